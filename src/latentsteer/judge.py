"""The judge: an independent data-space CNN digit classifier.

It never sees the VAE: it is trained on real pixels, separately, and later stages trust its
reading of a decoded image instead of the VAE's own digit head. Its penultimate layer also
serves as the feature space for the realism (Fréchet) score.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from latentsteer.augment import random_shift
from latentsteer.modelio import read_model_folder, write_model_folder

FORMAT = "latentsteer.Judge/1"


@dataclass(frozen=True)
class JudgeConfig:
    """Training of the judge (mirrors ``params.yaml: judge``)."""

    epochs: int = 5  # passes over the training split
    batch_size: int = 128  # images per step
    lr: float = 1e-3  # Adam learning rate
    shift: int = 2  # random translation of up to this many pixels (augmentation)
    seed: int = 0  # seeds weights, batch order and augmentation
    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"judge.{key} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"judge.lr must be positive; got {self.lr!r}")
        if not 0 <= self.shift <= 6:
            raise ValueError(f"judge.shift must be from 0 to 6; got {self.shift!r}")


class Judge(nn.Module):
    """Small LeNet-style CNN: ``(B, 28, 28)`` in [0, 1] → 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(), nn.Linear(64 * 49, 128), nn.ReLU(),  # (B, 128)
        )  # fmt: skip
        self.dropout = nn.Dropout(0.3)
        self.classify = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.dropout(self.features(x.unsqueeze(1))))

    @property
    def device(self) -> torch.device:
        return self.classify.weight.device

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """Penultimate features ``(n, 128)`` of images ``(n, 28, 28)`` in [0, 1]."""
        self.eval()
        x = torch.as_tensor(images, dtype=torch.float32)
        parts = [self.features(b.to(self.device).unsqueeze(1)) for b in x.split(batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, 128)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """Class probabilities ``(n, 10)`` of images ``(n, 28, 28)`` in [0, 1]."""
        self.eval()
        x = torch.as_tensor(images, dtype=torch.float32)
        parts = [self(b.to(self.device)).softmax(1) for b in x.split(batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, 10)


def train_judge(
    images: torch.Tensor, labels: torch.Tensor, cfg: JudgeConfig, device: torch.device,
    progress: bool = True,
) -> Judge:  # fmt: skip
    """Train a judge from scratch.

    Args:
        images: ``(n, 28, 28)`` float32 in [0, 1].
        labels: ``(n,)`` int64 digits.
        cfg: training settings.
        device: where to train.
    """
    torch.manual_seed(cfg.seed)
    model = Judge().to(device)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-len(images) // cfg.batch_size)
    # Cosine decay to zero: the last epochs fine-tune at small steps, worth ~0.3% accuracy.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=steps)
    x_all, y_all = images.to(device), labels.to(device)
    for epoch in range(cfg.epochs):
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 1009 + epoch)
        perm = torch.randperm(len(x_all), generator=g).to(device)
        batches = perm.split(cfg.batch_size)
        for idx in tqdm(batches, desc=f"judge epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                        leave=False, mininterval=2.0):  # fmt: skip
            x = random_shift(x_all[idx], cfg.shift, g)
            loss = F.cross_entropy(model(x), y_all[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
    return model.eval()


def accuracy(judge: Judge, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images the judge reads as their label."""
    pred = judge.probabilities(images).argmax(1).cpu()
    return (pred == labels.cpu()).float().mean().item()


def save_judge(judge: Judge, path: str | os.PathLike[str], metrics: dict, cfg: JudgeConfig) -> None:
    write_model_folder(path, FORMAT, {"trained_with": asdict(cfg)}, judge.state_dict(), metrics)


def load_judge(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Judge:
    """Rebuild the judge from its folder (errors as in ``modelio.read_model_folder``)."""
    return read_model_folder(path, FORMAT, lambda _cfg: Judge(), device)
