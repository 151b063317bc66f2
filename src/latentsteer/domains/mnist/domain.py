"""The MNIST domain object: conv networks for 28×28 digits, their likelihood, starts, grids."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentsteer.domain import Domain, Start
from latentsteer.domains.mnist.augment import random_shift
from latentsteer.domains.mnist.tolerances import TOLERANCE
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE, bernoulli_nll

SIDE = 28  # pixels per side


def default_heads() -> tuple[HeadSpec, ...]:
    """The heads of the pipeline's MNIST model (``params.yaml: model.heads`` lists the same):
    the digit class and three Morpho-MNIST measures, each learned from its label column."""
    return (
        HeadSpec("digit", "class", "digit", classes=10, weight=60.0),
        HeadSpec("thickness", "regression", "thickness", weight=20.0),
        HeadSpec("slant", "regression", "slant", weight=5.0),
        HeadSpec("width", "regression", "width", weight=5.0),
    )


class ImageEncoder(nn.Sequential):
    """Conv encoder ``(B, 28, 28) → (B, 2d)``; a ``Sequential`` so its weights keep their
    names (``encoder.0.weight``, ...) in model folders written before domains existed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.unsqueeze(1))  # (B, 1, 28, 28) for the convs


class ImageDecoder(nn.Sequential):
    """Deconv decoder ``(B, d) → (B, 28, 28)`` logits."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return super().forward(z).squeeze(1)


class MnistDomain(Domain):
    """28×28 grey digits in [0, 1]; see :mod:`latentsteer.domains.mnist`."""

    name = "mnist"
    sample_shape = (SIDE, SIDE)
    tolerances = TOLERANCE
    match_on = "thickness"
    context_loader = "latentsteer.domains.mnist.steering_context:load_domain_context"
    sources = {  # the pipeline's folders
        "judge": "models/judge",
        "certifier": "models/certifier",
        "data": "data/raw",
        "labels": "data/labels",
    }
    file_suffixes = (".npy", ".npz")  # or a folder of PNGs
    start_help = (
        "random:N, sure:N (draws the digit head reads surely), test:A-B (inclusive), or a "
        "path to a .npy/.npz array or a PNG folder"
    )
    property_support = "latentsteer.domains.mnist.own_property"
    table_help = ("an .npz with an images array (N, 28, 28; uint8, or floats in [0, 1]) and one "
                  "array of N values per property")  # fmt: skip

    def networks(self, config: ModelConfig) -> tuple[nn.Module, nn.Module]:
        c, d = config.channels, config.latent_dim
        encoder = ImageEncoder(
            nn.Conv2d(1, c, 4, 2, 1), nn.SiLU(),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.SiLU(),  # (B, 2c, 7, 7)
            nn.Flatten(), nn.Linear(2 * c * 49, config.hidden), nn.SiLU(),
            nn.Linear(config.hidden, 2 * d),
        )  # fmt: skip
        decoder = ImageDecoder(
            nn.Linear(d, config.hidden), nn.SiLU(),
            nn.Linear(config.hidden, 2 * c * 49), nn.SiLU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.SiLU(),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, 2, 1),  # (B, 1, 28, 28)
        )  # fmt: skip
        return encoder, decoder

    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return bernoulli_nll(logits, x)

    def to_samples(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def check_samples(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE):
            raise ValueError(f"images must have shape (n, 28, 28); got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("images contain NaN or infinite values")
        if x.numel() and (x.min() < -1e-4 or x.max() > 1 + 1e-4):
            raise ValueError("images must lie in [0, 1] (divide 0-255 data by 255)")
        return x.clamp(0.0, 1.0)

    def augment(self, x: torch.Tensor, amount: int, g: torch.Generator) -> torch.Tensor:
        return random_shift(x, amount, g)  # whole pixels: the measured labels stay true

    def parse_start(
        self,
        spec: str,
        model: MultiHeadVAE,
        seed: int = 0,
        data_root: str | os.PathLike[str] | None = None,
    ) -> Start:
        """``random:N`` prior draws (``sure:N``: those the digit head reads surely),
        ``test:A-B`` MNIST test digits (inclusive), or a path to a ``.npy``/``.npz`` array or
        a folder of PNGs."""
        from latentsteer.domains.mnist.datasets import mnist

        if spec.startswith("random:"):
            return super().parse_start(spec, model, seed, data_root)
        if m := re.fullmatch(r"sure:(\d+)", spec):
            if int(m.group(1)) < 1:
                raise ValueError(f"start {spec!r}: N must be at least 1")
            return Start(sure_draws(model, int(m.group(1)), seed), None, None, spec)
        if m := re.fullmatch(r"test:(\d+)-(\d+)", spec):
            a, b = int(m.group(1)), int(m.group(2))
            images, labels = mnist("test", data_root)
            if not a <= b < len(images):
                raise ValueError(
                    f"start {spec!r}: indices must satisfy 0 <= A <= B < {len(images)}"
                )
            x = torch.as_tensor(images[a : b + 1])
            return Start(model.encode(x), x, labels[a : b + 1], spec)
        path = Path(spec)
        if ":" in spec and not path.exists():
            raise ValueError(f"bad start {spec!r}; accepted: {self.start_help}")
        if not path.exists():
            raise ValueError(
                f"start {spec!r} is neither a spec nor an existing path; accepted: "
                f"{self.start_help}"
            )
        x = self.read_samples(path)
        return Start(model.encode(x), x, None, spec)

    def measure_file(
        self,
        path: str | os.PathLike[str],
        workers: int | None = None,
        options: Mapping[str, object] | None = None,
    ) -> pd.DataFrame:
        """Morpho-MNIST measures of a ``.npy``/``.npz`` array or a PNG folder: ``index``,
        ``file`` (for PNGs), then one column per measure. ``options``: the fields of
        :class:`~latentsteer.domains.mnist.morphometry.MorphometryConfig`."""
        from latentsteer.domains.mnist.images import read_images
        from latentsteer.domains.mnist.morphometry import MorphometryConfig, measure

        images, names = read_images(path)
        table = measure(images, workers=workers, config=MorphometryConfig(**(options or {})))
        table.insert(0, "index", range(len(table)))
        if names is not None:
            table.insert(1, "file", names)
        return table

    def read_samples(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """``(n, 28, 28)`` images in [0, 1] from a ``.npy``/``.npz`` array or a PNG folder."""
        from latentsteer.domains.mnist.images import read_images
        from latentsteer.domains.mnist.morphometry import as_image_batch

        arr, _ = read_images(path)
        batch = as_image_batch(arr)
        scaled = batch / 255.0 if batch.dtype == np.uint8 else batch
        x = torch.as_tensor(scaled, dtype=torch.float32)
        if x.shape[1:] != (SIDE, SIDE):
            raise ValueError(f"start images must be 28x28; {path} holds {tuple(x.shape[1:])}")
        return x

    def save_grid(self, samples: torch.Tensor, path: str | os.PathLike[str]) -> None:
        from latentsteer.domains.mnist.grids import save_grid

        save_grid(samples, path)


MNIST = MnistDomain()


SURE = 0.999  # the digit head's probability above which a prior draw is a clear digit
SURE_TRIES = 50  # batches of draws before ``sure:N`` gives up


def sure_draws(model: MultiHeadVAE, n: int, seed: int = 0) -> torch.Tensor:
    """``(n, d)`` prior draws whose digit head reads one digit with at least ``SURE``: starts
    where "keep the digit" has one answer (a blend of a 4 and a 9 has none).

    Draws come in seeded batches of ``n`` and keep their order. The heads choose them, never
    an oracle, so no grading network has a say in which samples are steered.

    Raises:
        ValueError: a model without a class head, or too few clear draws (one line).
    """
    heads = [h.name for h in model.config.heads if h.kind == "class"]
    if not heads:
        raise ValueError("start 'sure:N' needs a model with a digit head; use random:N")
    kept: list[torch.Tensor] = []
    found = 0
    for i in range(SURE_TRIES):
        z = model.sample_prior(n, seed=seed + 1_000_003 * i)
        with torch.no_grad():
            p = model.predict(z)[heads[0]]  # (n, k)
        ok = p.max(dim=1).values >= SURE
        kept.append(z[ok])
        found += int(ok.sum())
        if found >= n:
            return torch.cat(kept)[:n]
    raise ValueError(
        f"start 'sure:{n}': only {found} of {SURE_TRIES * n} prior draws have a "
        f"digit head reading >= {SURE}"
    )
