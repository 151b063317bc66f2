"""A regression head for a new property, fitted on the codes of a table's samples.

The model's encoder, decoder and existing heads stay as they are; the new head has the shape
of every other head (two hidden layers of ``head_hidden`` units on the code) and is trained
alone on the posterior means of the table's samples, on a seeded 80% of them. The other 20%
are held out: their R² and MAE, in the property's units, are what the head is reported by.

Steering moves codes away from where samples encode, so the head is trained on codes with a
little Gaussian noise added (:data:`CODE_NOISE`, in prior units) as well as on the means: it
must stay sensible across the neighbourhood the ascent walks, not only at the table's points.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from latentsteer.model import HeadSpec, MultiHeadVAE

CODE_NOISE = 0.1  # sd of the noise added to codes while fitting (the prior's sd is 1)
HOLDOUT = 0.2  # share of rows held out to report the head by
EPOCHS = 400  # full passes; the table is small (hundreds to thousands of rows)
BATCH = 256


@dataclass
class HeadFit:
    """The model with the new head, and how well the head predicts held-out rows.

    Attributes:
        model: a new :class:`MultiHeadVAE` with the head appended (in eval mode).
        r2, mae: on the held-out rows, in the property's units.
        rows_train, rows_heldout: how many rows each part had.
        seconds: wall time of the fit.
    """

    model: MultiHeadVAE
    r2: float
    mae: float
    rows_train: int
    rows_heldout: int
    seconds: float

    def metrics(self) -> dict[str, float | int]:
        """For ``metrics.json``."""
        return {"head_r2_heldout": round(self.r2, 6), "head_mae_heldout": round(self.mae, 6),
                "head_rows_train": self.rows_train, "head_rows_heldout": self.rows_heldout,
                "head_fit_s": round(self.seconds, 2)}  # fmt: skip


def with_head(model: MultiHeadVAE, name: str) -> MultiHeadVAE:
    """A copy of ``model`` with an untrained regression head ``name`` appended; every other
    weight and target scale copied."""
    spec = HeadSpec(name=name, kind="regression", column=name)
    config = replace(model.config, heads=(*model.config.heads, spec))
    new = MultiHeadVAE(config, model.domain).to(model.device)
    state = {k: v for k, v in model.state_dict().items()
             if k not in ("target_mean", "target_std")}  # fmt: skip
    missing, unexpected = new.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(f"heads.{name}.") or k.startswith("target_")
                                  for k in missing), (missing, unexpected)  # fmt: skip
    n = len(model.config.heads)
    with torch.no_grad():
        new.target_mean[:n] = model.target_mean
        new.target_std[:n] = model.target_std
    return new.eval()


def fit_head(
    model: MultiHeadVAE, codes: torch.Tensor, values: np.ndarray, name: str, seed: int = 0,
    epochs: int = EPOCHS, extra: tuple[torch.Tensor, np.ndarray] | None = None,
) -> HeadFit:  # fmt: skip
    """Append head ``name`` to ``model`` and fit it on ``codes (n, d)`` → ``values (n,)``.

    Args:
        codes: posterior means of the table's samples.
        values: their measured values, in the property's units.
        seed: the split, the head's initial weights and the code noise.
        epochs: passes over the training rows.
        extra: further training rows ``(codes (m, d), values (m,))`` (decoded samples read
            by the learned guide: :func:`latentsteer.learned.fit.fit_property`); never
            held out, so the reported error is the table's.

    Raises:
        ValueError: codes and values of different lengths, or fewer than 10 rows.
    """
    if len(codes) != len(values):
        raise ValueError(f"{len(codes)} codes but {len(values)} values")
    if len(codes) < 10:
        raise ValueError(f"a head needs at least 10 encoded rows; got {len(codes)}")
    began = time.perf_counter()
    torch.manual_seed(seed)
    new = with_head(model, name)
    i = len(new.config.heads) - 1
    z = codes.detach().float().cpu()
    y = torch.tensor(np.asarray(values, dtype=np.float64))
    order = np.random.default_rng(seed).permutation(len(z))
    cut = int(round(len(z) * HOLDOUT))
    test, train = order[:cut], order[cut:]
    with torch.no_grad():
        new.target_mean[i] = y[train].mean().item()
        new.target_std[i] = max(y[train].std().item(), 1e-6)
    head = new.heads[name].cpu().train()
    target = ((y - new.target_mean[i].item()) / new.target_std[i].item()).float()
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    g = torch.Generator().manual_seed(seed)
    zt, yt = z[train], target[train]
    if extra is not None and len(extra[0]):
        more = torch.tensor(np.asarray(extra[1], dtype=np.float64))
        zt = torch.cat([zt, extra[0].detach().float().cpu()])
        yt = torch.cat(
            [yt, ((more - new.target_mean[i].item()) / new.target_std[i].item()).float()]
        )
    for _ in range(epochs):
        perm = torch.randperm(len(zt), generator=g)
        for b in perm.split(BATCH):
            noisy = zt[b] + CODE_NOISE * torch.randn(len(b), z.shape[1], generator=g)
            # means and noisy codes both: sharp at the table's points, smooth around them
            loss = (head(torch.cat([zt[b], noisy])).squeeze(1) - yt[b].repeat(2)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    head.to(new.device).eval()
    with torch.no_grad():
        pred = new.predict(z[test].to(new.device))[name].double().cpu().numpy()
    truth = y[test].numpy()
    resid = pred - truth
    r2 = 1.0 - float((resid**2).sum() / max(((truth - truth.mean()) ** 2).sum(), 1e-12))
    return HeadFit(new.eval(), r2, float(np.abs(resid).mean()), len(train), len(test),
                   time.perf_counter() - began)  # fmt: skip
