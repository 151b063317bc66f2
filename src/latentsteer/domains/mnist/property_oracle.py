"""The learned oracle of one image property: two small CNN regressors fitted on a table.

A user's table (:mod:`.property_table`) of digits and a measured value becomes two
independent data-space models (see :mod:`latentsteer.learned.card` for the roles), both
ending in 128 penultimate features and a linear output:

* the **certifier**, ``allconv``: strided 5×5 convs with GroupNorm and GELU, then a 7×7 conv
  over the whole map (as the digit certifier of :mod:`.judge`);
* the **guide**, ``lenet``: 3×3 convs with GELU and average pooling, then a dense layer,
  fitted from another seed and with fewer channels (it is consulted at every steering step,
  so it is kept cheap).

Steering grades *decoded* digits, which are blurrier than the table's, so each network is
chosen by its error there as well as by cross-validation. Fitted on 2 500 training digits'
``area`` (12 epochs) and read on 1 000 decoded prior draws measured exactly, the 32-64
``allconv`` erred by 3.3 px² on average (1.2 px² on test digits); a 16-32 ``lenet`` with
average pooling by 3.9 px² (1.0), where a BatchNorm and max-pooling ``lenet`` of 8-16
channels, fitted for 6 epochs, read the decoded digits 7 px² too high on average (MAE
8.4 px²): batch statistics of sharp digits do not carry over to blurred ones.

Both regress the standardised value with the mean squared error (Adam, cosine-decayed rate);
the mean and spread are buffers of each network, so a state dict is the whole model. No
augmentation by default: a whole-pixel shift keeps Morpho-MNIST measures true, but not a
user's property in general (say, where the ink sits); ``shift`` turns it on.

**Cross-validation.** 5 folds over the table (over a seeded subsample of ``cv_rows`` rows for
larger tables, so the fit stays fast; the estimate is then, if anything, pessimistic, as the
final models learn from more rows): each fold fits both networks with the final settings on
four fifths and predicts the fifth. ``card.cv`` holds the MAE and R² of these out-of-fold
predictions. The final networks are then fitted on every row.

**Applicability.** A reading is evidence only near the table: the applicability of an image
is the Euclidean distance from its certifier features (the 128 penultimate ones) to the
nearest table image's, ``inside_when="at_most"``. The threshold is the 99th percentile of
the table images' leave-one-out distances (each to its nearest *other* table image) in the
final certifier: the same network and the same reference set that grade a sample later, so
the threshold and the readings are on one scale. The alternative, held-out images' distances
to their fold's training images in each fold's certifier, measures networks that do not
grade, whose feature scales differ from the final one's (on MNIST ``height``: median nearest
distance 0.59 in the fold networks, 0.97 in the final one), so its percentile does not carry
over. Both are kept in ``card.extra["applicability"]``; on the first 5 000 training digits'
``height``, leave-one-out put 98.6% of 1 000 test digits inside (held-out: 98.0%).

Files in the property's folder: ``certifier.pt`` and ``guide.pt`` (state dicts, read with
``weights_only=True``), ``features.npy`` (``(n, 128)`` float32, the table's certifier
features; read with ``allow_pickle=False``) and ``card.json``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentsteer.errors import LatentsteerError
from latentsteer.learned.card import PropertyCard, Role
from latentsteer.learned.table import PropertyTable
from latentsteer.modelio import torch_load_safely

FEATURES = 128  # penultimate width of both networks: the applicability feature space
FOLDS = 5
PERCENTILE = 99.0  # held-out images inside the applicability domain, in percent
FILES = {"certifier": "certifier.pt", "guide": "guide.pt"}
FEATURES_FILE = "features.npy"
ARCH = {"certifier": "allconv", "guide": "lenet"}
DESCRIBE = {
    "lenet": "CNN regressor on 28x28 pixels (3x3 convs {c}-{c2}, GELU, average pooling, dense 128)",
    "allconv": "CNN regressor on 28x28 pixels (strided 5x5 convs {c}-{c2}, GroupNorm, GELU, "
    "7x7 conv to 128)",
}


def _lenet(c: int) -> nn.Sequential:
    """3×3 convs with GELU and average pooling, then a dense layer: ``(B, 1, 28, 28)``
    → ``(B, 128)``. No batch statistics: on decoded digits, which are blurrier than the
    table's, a BatchNorm variant read the area 7 px² too high on average."""
    return nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1), nn.GELU(),
        nn.AvgPool2d(2),  # (B, c, 14, 14)
        nn.Conv2d(c, 2 * c, 3, padding=1), nn.GELU(),
        nn.AvgPool2d(2),  # (B, 2c, 7, 7)
        nn.Flatten(), nn.Linear(2 * c * 49, FEATURES), nn.GELU(),  # (B, 128)
    )  # fmt: skip


def _allconv(c: int) -> nn.Sequential:
    """Strided 5×5 convs with GroupNorm and GELU, then a 7×7 conv over the whole map:
    ``(B, 1, 28, 28)`` → ``(B, 128)``. The last conv keeps where the strokes are, which a
    size-like property needs (global pooling would discard it)."""
    return nn.Sequential(
        nn.Conv2d(1, c, 5, stride=2, padding=2), nn.GroupNorm(4, c), nn.GELU(),  # (B, c, 14, 14)
        nn.Conv2d(c, 2 * c, 5, stride=2, padding=2), nn.GroupNorm(8, 2 * c), nn.GELU(),
        nn.Conv2d(2 * c, FEATURES, 7), nn.GELU(),  # (B, 128, 1, 1)
        nn.Flatten(),  # (B, 128)
    )  # fmt: skip


_BUILDERS: dict[str, Callable[[int], nn.Sequential]] = {"lenet": _lenet, "allconv": _allconv}


class PropertyCNN(nn.Module):
    """A CNN regressor of one property: ``(B, 28, 28)`` in [0, 1] → ``(B,)`` values.

    Args:
        arch: ``lenet`` or ``allconv`` (see the module docstring).
        channels: the first conv's channels; the second has twice as many (a multiple of 8).
    """

    def __init__(self, arch: str, channels: int) -> None:
        super().__init__()
        if arch not in _BUILDERS:
            raise ValueError(f"arch must be one of {', '.join(_BUILDERS)}; got {arch!r}")
        if not isinstance(channels, int) or channels < 8 or channels % 8:
            raise ValueError(f"channels must be a positive multiple of 8; got {channels!r}")
        self.arch, self.channels = arch, channels
        self.features = _BUILDERS[arch](channels)
        self.out = nn.Linear(FEATURES, 1)
        # The table's mean and spread: the network regresses standardised values.
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))

    @property
    def device(self) -> torch.device:
        return self.out.weight.device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised predictions ``(B,)`` of images ``(B, 28, 28)``."""
        return self.out(self.features(x.unsqueeze(1))).squeeze(1)

    @torch.no_grad()
    def values(self, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """Predicted values ``(n,)`` in the property's units, on the CPU."""
        self.eval()
        parts = [self(b.to(self.device)).cpu() for b in x.split(batch_size)]
        z = torch.cat(parts) if parts else torch.zeros(0)
        return z * self.y_std.cpu() + self.y_mean.cpu()

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """Penultimate features ``(n, 128)`` on the CPU."""
        self.eval()
        parts = [self.features(b.to(self.device).unsqueeze(1)).cpu() for b in x.split(batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, FEATURES)


def fit_cnn(
    images: torch.Tensor,
    values: np.ndarray,
    arch: str,
    channels: int,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    shift: int = 0,
    device: torch.device | str = "cpu",
) -> PropertyCNN:
    """Fit one CNN regressor from scratch.

    Args:
        images: ``(n, 28, 28)`` float32 in [0, 1].
        values: ``(n,)`` the property's values.
        arch, channels: the network (:class:`PropertyCNN`).
        epochs: passes over the images.
        seed: seeds the weights, the batch order and the shifts.
        batch_size: images per Adam step.
        lr: Adam's first learning rate, decayed to zero along a cosine.
        shift: random whole-pixel translations up to this many pixels (0: none).
        device: where to fit.

    Returns:
        The network, in eval mode, on ``device``.
    """
    from latentsteer.domains.mnist.augment import random_shift

    y = torch.as_tensor(values, dtype=torch.float32)
    mean, std = y.mean(), y.std().clamp_min(1e-8)  # a constant column fits a constant
    with torch.random.fork_rng(devices=[]):  # seed the weights without touching global state
        torch.manual_seed(seed)
        model = PropertyCNN(arch, channels)
    model.y_mean.fill_(mean)
    model.y_std.fill_(std)
    model = model.to(device)
    x_all, z_all = images.to(device), ((y - mean) / std).to(device)
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    steps = max(1, epochs * -(-len(images) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x_all), generator=g).split(batch_size):
            idx = idx.to(device)
            x = random_shift(x_all[idx], shift, g) if shift else x_all[idx]
            loss = F.mse_loss(model(x), z_all[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
    return model.eval()


def nearest_distance(
    queries: torch.Tensor, reference: torch.Tensor, exclude_self: bool = False
) -> np.ndarray:
    """Euclidean distance ``(n,)`` from each query ``(n, k)`` to its nearest reference row
    ``(m, k)``, in float64 (so a query equal to a reference row reads 0 up to ~1e-7).

    Args:
        exclude_self: the queries are the reference rows themselves: skip each row's own
            distance (leave-one-out).
    """
    ref = reference.double()
    out = np.full(len(queries), np.inf)
    start = 0
    for chunk in queries.double().split(1024):
        d = torch.cdist(chunk, ref)  # (b, m)
        if exclude_self:
            rows = torch.arange(len(chunk))
            d[rows, rows + start] = float("inf")
        if d.shape[1]:
            out[start : start + len(chunk)] = d.min(dim=1).values.numpy()
        start += len(chunk)
    return out


def _errors(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """MAE and R² of predictions ``(n,)``."""
    resid = truth - pred
    total = float(((truth - truth.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / total if total > 0 else float("nan")
    return float(np.abs(resid).mean()), r2


def _as_images(images: object) -> torch.Tensor:
    """Images ``(n, 28, 28)`` (a tensor or array, any device) as a float32 CPU tensor.

    Raises:
        ValueError: another shape, NaN, or values outside [0, 1] (one line).
    """
    from latentsteer.domains.mnist.domain import MNIST  # the domain's own check of samples

    return MNIST.check_samples(torch.as_tensor(images).detach().to("cpu", torch.float32))


class ImagePropertyOracle:
    """The learned oracle of one image property (:class:`PropertyOracle`), both roles.

    Args:
        card: what was fitted.
        certifier, guide: the two networks (eval mode).
        features: ``(n, 128)`` the table images' certifier features.
    """

    def __init__(
        self, card: PropertyCard, certifier: PropertyCNN, guide: PropertyCNN, features: torch.Tensor
    ) -> None:
        self.card = card
        self.models = {"certifier": certifier.eval(), "guide": guide.eval()}
        self.features = features.float().cpu()

    def predict(self, images: object, role: Role = "certifier") -> np.ndarray:
        """``(n,)`` the role's predicted values of images ``(n, 28, 28)`` in [0, 1]."""
        if role not in self.models:
            raise ValueError(f"role must be 'certifier' or 'guide'; got {role!r}")
        return self.models[role].values(_as_images(images)).double().numpy()

    def applicability(self, images: object) -> np.ndarray:
        """``(n,)`` distance of each image to the nearest table image in the certifier's
        features (inside when at most ``card.threshold``)."""
        feats = self.models["certifier"].embed(_as_images(images))
        return nearest_distance(feats, self.features)

    def to(self, device: torch.device | str) -> ImagePropertyOracle:
        """Run the networks on ``device`` (inputs may live anywhere; outputs are numpy)."""
        for m in self.models.values():
            m.to(device)
        return self


def fit_image_oracle(
    table: PropertyTable,
    name: str,
    folder: str | os.PathLike[str],
    seed: int = 0,
    tolerance: float | None = None,
    *,
    epochs: int = 12,
    channels: tuple[int, int] = (32, 16),
    batch_size: int = 64,
    lr: float = 2e-3,
    shift: int = 0,
    cv_rows: int | None = 5000,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> ImagePropertyOracle:
    """Fit certifier and guide on ``table``, cross-validate them and write the oracle.

    Args:
        table: images ``(n, 28, 28)`` float32 in [0, 1] and their values.
        name: the property's name (the card's).
        folder: where to write ``certifier.pt``, ``guide.pt``, ``features.npy`` and
            ``card.json`` (made if missing; the caller makes the write atomic).
        seed: the certifier's seed (the guide's is ``seed + 1``; fold networks add 100 per
            fold), and the folds' shuffle.
        tolerance: what counts as "got it", in the property's units (``None``: the
            certifier's cross-validated MAE).
        epochs: passes over the images, in every fit (folds and final).
        channels: the first conv's channels of the certifier and of the guide.
        batch_size, lr: Adam's steps (see :func:`fit_cnn`).
        shift: random whole-pixel translations while fitting (0: none; only for properties
            that a translation leaves unchanged).
        cv_rows: cross-validate on a seeded subsample of at most this many rows (``None``:
            all rows).
        device: where to fit; the returned oracle runs on the CPU.
        progress: called with one line per finished fit.

    Returns:
        The fitted oracle, as :func:`load_image_oracle` will read it back.

    Raises:
        ValueError: bad settings, or a tolerance that is not positive (one line).
    """
    if tolerance is not None and not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number; got {tolerance!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer; got {epochs!r}")
    if cv_rows is not None and cv_rows < 2 * FOLDS:
        raise ValueError(f"cv_rows must be at least {2 * FOLDS}; got {cv_rows!r}")
    say = progress or (lambda _line: None)
    x = torch.as_tensor(np.asarray(table.samples), dtype=torch.float32)
    y = np.asarray(table.values, dtype=np.float64)
    n = len(y)
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "shift": shift}
    chans = dict(zip(("certifier", "guide"), channels, strict=True))
    seeds = {"certifier": seed, "guide": seed + 1}

    def fit(role: str, rows: np.ndarray, fold: int | None) -> PropertyCNN:
        t0 = time.perf_counter()
        s = seeds[role] + (0 if fold is None else 100 * (fold + 1))
        model = fit_cnn(x[rows], y[rows], ARCH[role], chans[role], seed=s, device=device,
                        **settings)  # fmt: skip
        what = "all rows" if fold is None else f"fold {fold + 1}/{FOLDS}"
        say(f"{name}: {role} on {what} ({len(rows)} images) in {time.perf_counter() - t0:.1f} s")
        return model.cpu()

    # Cross-validation: out-of-fold predictions of both roles, and held-out distances.
    rng = np.random.default_rng(seed)
    cv_pick = np.sort(rng.permutation(n)[:cv_rows]) if cv_rows is not None else np.arange(n)
    folds = np.array_split(rng.permutation(cv_pick), FOLDS)
    oof = {role: np.full(n, np.nan) for role in ARCH}
    held_out: list[np.ndarray] = []
    for k, test in enumerate(folds):
        train = np.concatenate([f for i, f in enumerate(folds) if i != k])
        for role in ARCH:
            model = fit(role, train, k)
            oof[role][test] = model.values(x[test]).double().numpy()
            if role == "certifier":
                held_out.append(nearest_distance(model.embed(x[test]), model.embed(x[train])))
    cv: dict[str, float] = {}
    for role in ARCH:
        mae, r2 = _errors(y[cv_pick], oof[role][cv_pick])
        cv[f"{role}_mae"], cv[f"{role}_r2"] = mae, r2

    everything = np.arange(n)
    final = {role: fit(role, everything, None) for role in ARCH}
    features = final["certifier"].embed(x)
    loo = nearest_distance(features, features, exclude_self=True)

    card = PropertyCard(
        name=name,
        column=table.column,
        table=Path(table.path).name,
        rows=n,
        certifier=DESCRIBE[ARCH["certifier"]].format(
            c=chans["certifier"], c2=2 * chans["certifier"]
        ),
        guide=DESCRIBE[ARCH["guide"]].format(c=chans["guide"], c2=2 * chans["guide"]),
        cv=cv,
        tolerance=float(tolerance) if tolerance is not None else cv["certifier_mae"],
        tolerance_from="given" if tolerance is not None else "cross-validated error",
        applicability="Euclidean distance to the nearest table image in the certifier's "
        f"{FEATURES} penultimate features",
        threshold=float(np.percentile(loo, PERCENTILE)),
        inside_when="at_most",
        value_range=(float(y.min()), float(y.max())),
        extra={
            **{
                role: {"arch": ARCH[role], "channels": chans[role], "seed": seeds[role]}
                for role in ARCH
            },  # fmt: skip
            "fit": settings,
            "cv_folds": FOLDS,
            "cv_rows": len(cv_pick),
            "applicability": {
                "percentile": PERCENTILE,
                "threshold_from": "table images' leave-one-out nearest distance in the "
                "final certifier",
                "leave_one_out_median": float(np.median(loo)),
                "held_out_percentile": float(np.percentile(np.concatenate(held_out), PERCENTILE)),
                "held_out_median": float(np.median(np.concatenate(held_out))),
            },
            "files": {**FILES, "features": FEATURES_FILE},
        },
    )
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for role, model in final.items():
        torch.save(model.state_dict(), out / FILES[role])
    np.save(out / FEATURES_FILE, features.numpy().astype(np.float32), allow_pickle=False)
    card.write(out)
    return ImagePropertyOracle(card, final["certifier"], final["guide"], features)


def load_image_oracle(
    folder: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> ImagePropertyOracle:
    """The oracle :func:`fit_image_oracle` wrote into ``folder``.

    Raises:
        LatentsteerError: a missing or damaged card, weights or features file (one line).
    """
    out = Path(folder)
    card = PropertyCard.read(out)
    models: dict[str, PropertyCNN] = {}
    for role, file in FILES.items():
        spec: Any = card.extra.get(role)
        try:
            model = PropertyCNN(str(spec["arch"]), int(spec["channels"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise LatentsteerError(f"{out / 'card.json'} does not describe the {role} "
                                   f"network ({exc})") from None  # fmt: skip
        path = out / file
        if not path.is_file():
            raise LatentsteerError(f"{path} is missing: the {role} was not saved with its card")
        state = torch_load_safely(path, f"{role} weights file")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                                  for v in state.values()):  # fmt: skip
            raise LatentsteerError(f"{path} does not hold a state dict of tensors")
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise LatentsteerError(f"{path} does not fit its card ({first})") from None
        models[role] = model.to(device).eval()
    path = out / FEATURES_FILE
    try:
        features = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise LatentsteerError(f"{path} is missing: the table's features were not saved") from None
    except (OSError, ValueError, EOFError) as exc:
        raise LatentsteerError(f"{path} is not a readable features file ({exc})") from None
    if features.shape != (card.rows, FEATURES) or features.dtype != np.float32:
        raise LatentsteerError(f"{path} holds {features.dtype} {features.shape}; expected "
                               f"float32 ({card.rows}, {FEATURES})")  # fmt: skip
    return ImagePropertyOracle(card, models["certifier"], models["guide"],
                               torch.from_numpy(features))  # fmt: skip
