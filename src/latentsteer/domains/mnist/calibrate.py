"""Calibrate the regression heads to what the decoder draws.

The heads learn from real digits: the thickness head maps the code of a real 7 to that
7's measured thickness. Steering asks something else: the thickness of the image a code
*decodes to*, anywhere the ascent may go, including prior draws far from any encoded
digit. Decoded digits are smoother than real ones and prior draws lie between the
training codes, so the head and the measurement drift apart there (on the default model,
0.32 px mean error on prior draws).

Morpho-MNIST measures are functions of the image, so the right target is computable for
any code: decode it and measure it. :func:`calibrate` decodes posterior means, posterior
samples and prior draws, measures the decoded images, and fine-tunes only the regression
heads whose column is a Morpho-MNIST measure on those pairs. Encoder, decoder and class
heads are left untouched (a digit has no such measurement: the judge stays independent).
The oracle still measures every steered result; calibration only makes the heads a better
surrogate of it.

The heads are then fitted to one Morpho-MNIST definition (threshold, scale, ...: the
``labels`` stage's), and the oracle must grade steered results with that same one. So
:func:`save_calibrated` records it in the model folder's ``config.json`` under ``measure``,
and :func:`measure_config_of` reads it back: the folder carries its own definition.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from latentsteer.domains.mnist.morphometry import MEASURES, MorphometryConfig, measure
from latentsteer.errors import LatentsteerError
from latentsteer.model import FORMAT, MultiHeadVAE
from latentsteer.modelio import read_model_entry, write_model_folder

MEASURE_KEY = "measure"  # config.json entry: the MorphometryConfig the heads were fitted to


@dataclass
class CalibrateConfig:
    """Mirrors ``params.yaml: calibrate``."""

    posterior: int = 15000  # training digits: their code means and one sample each
    prior: int = 15000  # prior draws
    holdout: int = 2000  # further prior draws, only to measure the error before and after
    epochs: int = 8  # passes over the calibration set
    batch_size: int = 256
    lr: float = 1e-3  # Adam, on the calibrated heads only
    seed: int = 0
    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N
    workers: int | None = None  # processes for the measures; null = one per core

    def __post_init__(self) -> None:
        for key in ("posterior", "prior", "holdout", "epochs", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"calibrate.{key} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"calibrate.lr must be positive; got {self.lr!r}")


def measurable_heads(model: MultiHeadVAE) -> list[str]:
    """Regression heads whose label column is a Morpho-MNIST measure."""
    return [h.name for h in model.config.heads if h.kind == "regression" and h.column in MEASURES]


@torch.no_grad()
def decoded_targets(
    model: MultiHeadVAE,
    z: torch.Tensor,
    workers: int | None = None,
    config: MorphometryConfig | None = None,
) -> dict[str, torch.Tensor]:
    """Measure the images ``z (n, d)`` decodes to: head name → ``(n,)`` (NaN where undefined).

    ``config`` is how to measure (``None``: the defaults).
    """
    images = torch.cat([model.decode(b).cpu() for b in z.split(4096)])  # (n, 28, 28)
    table = measure(images.numpy(), workers=workers, config=config, progress=False)
    cols = {h.name: h.column for h in model.config.heads}
    return {
        name: torch.as_tensor(table[cols[name]].to_numpy(), dtype=torch.float32)
        for name in measurable_heads(model)
    }


def mean_errors(
    model: MultiHeadVAE, z: torch.Tensor, targets: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Mean absolute error of each calibrated head at ``z`` against ``targets``."""
    with torch.no_grad():
        pred = model.predict(z.to(model.device))
    return {
        name: float(np.nanmean(np.abs(pred[name].cpu().numpy() - t.numpy())))
        for name, t in targets.items()
    }


def calibrate(
    model: MultiHeadVAE,
    images: torch.Tensor,
    cfg: CalibrateConfig,
    progress: bool = True,
    measure_config: MorphometryConfig | None = None,
) -> dict[str, float]:
    """Fine-tune the measurable regression heads on measured decoded images, in place.

    Args:
        model: a trained model (on its device).
        images: ``(m, 28, 28)`` training digits in [0, 1]; the first ``cfg.posterior`` are
            encoded.
        cfg: settings.
        progress: show a progress bar.
        measure_config: how to measure the decoded images: the definition the heads'
            training labels were measured with (``None``: the defaults).

    Returns:
        ``<head>_mae_before`` / ``<head>_mae_after`` on held-out prior draws, and the size
        of the calibration set.

    Raises:
        ValueError: a model without measurable regression heads.
    """
    names = measurable_heads(model)
    if not names:
        raise ValueError("calibration needs a regression head on a Morpho-MNIST measure")
    device = model.device
    gen = torch.Generator().manual_seed(cfg.seed)
    model.eval()
    with torch.no_grad():
        x = images[: cfg.posterior].to(device)
        mu, logvar = model.posterior(x)
        noise = torch.randn(mu.shape, generator=gen).to(device)
        sampled = mu + noise * (0.5 * logvar).exp()
        prior = torch.randn(cfg.prior + cfg.holdout, model.latent_dim, generator=gen).to(device)
    z = torch.cat([mu, sampled, prior[: cfg.prior]]).cpu()  # (N, d)
    held = prior[cfg.prior :].cpu()
    targets = decoded_targets(model, torch.cat([z, held]), cfg.workers, measure_config)
    train_t = {k: v[: len(z)] for k, v in targets.items()}
    held_t = {k: v[len(z) :] for k, v in targets.items()}
    report = {f"{k}_mae_before": v for k, v in mean_errors(model, held, held_t).items()}

    ok = torch.stack([torch.isfinite(v) for v in train_t.values()]).all(0)  # blank images
    z, train_t = z[ok].to(device), {k: v[ok].to(device) for k, v in train_t.items()}
    params = [p for n in names for p in model.heads[n].parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    for _ in tqdm(range(cfg.epochs), desc="calibrate", disable=not progress, leave=False):
        for idx in torch.randperm(len(z), generator=gen).split(cfg.batch_size):
            out = model.head_outputs(z[idx])
            loss = sum(F.mse_loss(out[n], model.standardise(n, train_t[n][idx])) for n in names)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            opt.step()
    model.eval()
    report.update({f"{k}_mae_after": v for k, v in mean_errors(model, held, held_t).items()})
    report["calibration_codes"] = int(len(z))
    return report


def save_calibrated(
    model: MultiHeadVAE,
    path: str | os.PathLike[str],
    metrics: dict | None = None,
    measure_config: MorphometryConfig | None = None,
) -> None:
    """Save a calibrated model folder, with the measure definition its heads were fitted to.

    The folder loads with :func:`latentsteer.load_model` like any other; ``config.json``
    also holds ``measure`` (the fields of ``measure_config``, defaults when ``None``).
    """
    measure = asdict(measure_config or MorphometryConfig())
    write_model_folder(
        path, FORMAT, asdict(model.config), model.state_dict(), metrics, {MEASURE_KEY: measure}
    )


def measure_config_of(path: str | os.PathLike[str]) -> MorphometryConfig | None:
    """The measure definition recorded in a model folder; ``None`` when it records none.

    Raises:
        LatentsteerError: the recorded entry is not a valid :class:`MorphometryConfig`.
    """
    entry = read_model_entry(path, MEASURE_KEY)
    if entry is None:
        return None
    try:
        return MorphometryConfig(**entry)
    except (TypeError, ValueError) as exc:
        raise LatentsteerError(
            f"{path}/config.json: bad {MEASURE_KEY!r} entry ({exc}); re-run `dvc repro calibrate`"
        ) from None
