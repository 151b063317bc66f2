"""Training loop for :class:`MultiHeadVAE`: one process, or DDP under ``torchrun``.

Data are small (MNIST: 50 000 × 784 floats), so they live in memory as tensors and batches are
index slices of a seeded permutation; under DDP every rank draws the same permutation and
takes every ``world``-th index, as ``DistributedSampler`` would. Each epoch reseeds from
``(seed, epoch)``, so a resumed run sees the same batches and noise as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from latentsteer.atomic import atomic_file
from latentsteer.errors import LatentsteerError
from latentsteer.model import MultiHeadVAE, gaussian_kl
from latentsteer.modelio import torch_load_safely

CHECKPOINT_FORMAT = "latentsteer.train-checkpoint/1"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (mirrors ``params.yaml: train``)."""

    epochs: int = 12  # passes over the training split
    batch_size: int = 128  # images per step (per process under DDP)
    lr: float = 2e-3  # Adam learning rate, cosine-decayed to 5% over the run
    beta: float = 1.0  # weight of the KL term
    warmup_epochs: int = 1  # KL weight ramps linearly from 0 to beta over these epochs
    shift: int = 2  # augmentation strength, the domain's (MNIST: shifts up to N pixels)
    seed: int = 0  # seeds weights, batch order and sampling noise
    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N
    nproc: int = 1  # processes; >1 trains with DDP via torchrun
    resume: bool = False  # continue from the last epoch checkpoint if its params match
    limit: int | None = None  # train on the first N images only (tiny test runs)

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "nproc"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"train.{key} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"train.lr must be positive; got {self.lr!r}")
        if not 0 <= self.shift <= 4:
            raise ValueError(f"train.shift must be from 0 to 4; got {self.shift!r}")
        if self.beta < 0 or self.warmup_epochs < 0:
            raise ValueError("train.beta and train.warmup_epochs must be >= 0")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"train.limit must be a positive integer or null; got {self.limit!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"train.device must be auto, cpu, cuda or cuda:N; got {self.device!r}")


@dataclass
class Dataset:
    """Images and head targets in memory.

    Attributes:
        images: ``(n, *sample_shape)`` float32 samples (the name kept from the first domain).
        targets: head name → ``(n,)`` int64 class or float32 value in original units.
    """

    images: torch.Tensor
    targets: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device: torch.device) -> Dataset:
        return Dataset(self.images.to(device), {k: v.to(device) for k, v in self.targets.items()})


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size())
    return DistInfo()


def losses(model: MultiHeadVAE, out, batch_x, batch_t, beta: float) -> dict[str, torch.Tensor]:
    """All loss terms of one batch, each a scalar; ``total`` is what is minimised.

    Each head's loss is the mean of its loss at the sampled code ``out.z`` and at the
    posterior mean ``out.mu``: the mean keeps predictions at encoded codes sharp, the sample
    keeps them right across the spread the decoder is trained on (and steering visits).
    """
    terms = {"recon": model.domain.reconstruction_nll(out.logits, batch_x).mean()}
    terms["kl"] = gaussian_kl(out.mu, out.logvar).mean()
    total = terms["recon"] + beta * terms["kl"]
    at_mean = model.head_outputs(out.mu) if out.z is not out.mu else out.heads
    for h in model.config.heads:
        loss = 0.5 * (
            _head_loss(model, h, out.heads[h.name], batch_t[h.name])
            + _head_loss(model, h, at_mean[h.name], batch_t[h.name])
        )
        terms[f"head_{h.name}"] = loss
        total = total + h.weight * loss
    terms["total"] = total
    return terms


def _head_loss(model: MultiHeadVAE, head, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if head.kind == "class":
        return F.cross_entropy(pred, target)
    return F.mse_loss(pred, model.standardise(head.name, target))


@torch.no_grad()
def evaluate_split(model: MultiHeadVAE, data: Dataset, batch_size: int = 1000) -> dict[str, float]:
    """Validation metrics at posterior means: recon, KL, −ELBO, and per-head accuracy/R²/MAE."""
    model.eval()
    sums: dict[str, float] = {"recon": 0.0, "kl": 0.0}
    preds: dict[str, list[torch.Tensor]] = {h: [] for h in model.head_names}
    for start in range(0, len(data), batch_size):
        x = data.images[start : start + batch_size]
        mu, logvar = model.posterior(x)
        sums["recon"] += model.domain.reconstruction_nll(model.decode_logits(mu), x).sum().item()
        sums["kl"] += gaussian_kl(mu, logvar).sum().item()
        for name, p in model.predict(mu).items():
            preds[name].append(p)
    n = len(data)
    metrics = {"recon": sums["recon"] / n, "kl": sums["kl"] / n}
    metrics["neg_elbo"] = metrics["recon"] + metrics["kl"]
    predictions = {name: torch.cat(parts) for name, parts in preds.items()}
    metrics.update(head_metrics(model, predictions, data.targets))
    return metrics


def head_metrics(
    model: MultiHeadVAE, predictions: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Accuracy of class heads, R² and MAE of regression heads (original units).

    Args:
        predictions: head name → ``(n, k)`` probabilities or ``(n,)`` values, as ``predict``.
        targets: head name → ``(n,)`` true class or value; rows whose target is NaN are
            left out of that head's metrics.
    """
    metrics = {}
    for h in model.config.heads:
        p = predictions[h.name].detach().cpu().double()
        t = torch.as_tensor(targets[h.name]).detach().cpu().double()
        ok = torch.isfinite(t)
        p, t = p[ok], t[ok]
        if h.kind == "class":
            metrics[f"{h.name}_accuracy"] = (p.argmax(1) == t).double().mean().item()
        else:
            resid = p - t
            metrics[f"{h.name}_r2"] = 1.0 - (resid.pow(2).mean() / t.var(unbiased=False)).item()
            metrics[f"{h.name}_mae"] = resid.abs().mean().item()
    return metrics


def config_digest(model_cfg: object, cfg: TrainConfig) -> str:
    """Hash of the settings a checkpoint is only valid for (all but resume and device)."""
    train = {k: v for k, v in asdict(cfg).items() if k not in ("resume", "device")}
    blob = json.dumps([asdict(model_cfg), train], sort_keys=True, default=str)  # type: ignore[call-overload]
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(
    path: Path, model, optim, sched, epoch: int, history: list, digest: str
) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "digest": digest,
        "epoch": epoch,
        "model": model.state_dict(),
        "optim": optim.state_dict(),
        "sched": sched.state_dict(),
        "history": json.dumps(history),
    }
    with atomic_file(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, digest: str) -> dict:
    """Read an epoch checkpoint, refusing damaged, foreign or mismatched ones in one line."""
    state = torch_load_safely(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise LatentsteerError(f"{path} is not a latentsteer training checkpoint")
    if state.get("digest") != digest:
        raise LatentsteerError(
            f"{path} was written with different model/train params; delete it or set "
            "train.resume: false"
        )
    return state


EpochCallback = Callable[[int, dict[str, float]], None]


def fit(
    model: MultiHeadVAE,
    train: Dataset,
    val: Dataset,
    cfg: TrainConfig,
    checkpoint: Path | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place and return the per-epoch history.

    Under an initialised process group the model is wrapped in DDP and every rank trains on
    its shard; only rank 0 writes checkpoints and calls ``on_epoch``.

    Args:
        model: a fresh or partly trained model, already on its device.
        train, val: data on the model's device.
        cfg: optimisation settings.
        checkpoint: file for epoch checkpoints; with ``cfg.resume`` training continues from it.
        on_epoch: called as ``on_epoch(epoch, metrics)`` after each epoch (rank 0).
        progress: show a progress bar per epoch (rank 0).

    Returns:
        One dict per epoch: ``train_*`` loss terms and ``val_*`` metrics.
    """
    info = dist_info()
    device = model.device
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = -(-len(train) // (cfg.batch_size * info.world))
    total_steps = cfg.epochs * steps_per_epoch
    # Cosine decay to 5% of the initial rate over the whole run.
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: 0.05 + 0.475 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )
    digest = config_digest(model.config, cfg)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if cfg.resume and checkpoint is not None and checkpoint.is_file():
        state = load_checkpoint(checkpoint, digest)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"]) + 1
    net: torch.nn.Module = model
    if info.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        perm = torch.randperm(len(train), generator=g)[info.rank :: info.world].to(device)
        torch.manual_seed(cfg.seed * 100_003 + epoch * 7 + info.rank)  # sampling noise
        sums: dict[str, float] = {}
        n_batches = 0
        bar = tqdm(
            perm.split(cfg.batch_size), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
            disable=not (progress and info.is_main), leave=False, mininterval=2.0,
        )  # fmt: skip
        for idx in bar:
            x = model.domain.augment(train.images[idx], cfg.shift, g)
            t = {k: v[idx] for k, v in train.targets.items()}
            done = epoch + n_batches / steps_per_epoch  # epochs completed, fractional
            ramp = min(1.0, done / cfg.warmup_epochs) if cfg.warmup_epochs else 1.0
            terms = losses(model, net(x), x, t, cfg.beta * ramp)
            optim.zero_grad(set_to_none=True)
            terms["total"].backward()
            optim.step()
            sched.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            n_batches += 1
        row = {f"train_{k}": v / max(n_batches, 1) for k, v in sums.items()}
        if info.is_main:
            row.update({f"val_{k}": v for k, v in evaluate_split(model, val).items()})
            row["epoch"] = epoch + 1
            history.append(row)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optim, sched, epoch, history, digest)
            if on_epoch is not None:
                on_epoch(epoch + 1, row)
        if info.world > 1:
            dist.barrier()
    return history
