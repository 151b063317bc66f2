"""Where steering starts: prior draws, encoded test digits, or the user's own images."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentsteer.domains.mnist.datasets import mnist
from latentsteer.domains.mnist.images import read_images
from latentsteer.domains.mnist.morphometry import as_image_batch
from latentsteer.model import MultiHeadVAE

SPEC_HELP = "random:N, test:A-B (inclusive), or a path to a .npy/.npz array or a PNG folder"


@dataclass
class Start:
    """Starting codes and, when they come from images, those images and labels.

    Attributes:
        z: ``(n, d)`` starting codes.
        images: ``(n, 28, 28)`` source images in [0, 1], or ``None`` for prior draws.
        labels: ``(n,)`` true digits for test images, else ``None``.
        spec: the spec it was made from.
    """

    z: torch.Tensor
    images: torch.Tensor | None
    labels: np.ndarray | None
    spec: str


def parse_start(
    spec: str, model: MultiHeadVAE, seed: int = 0, data_root: str | Path | None = None
) -> Start:
    """Turn a start spec into codes.

    Raises:
        ValueError: a spec that is none of the accepted forms, or an empty/out-of-range one.
    """
    if m := re.fullmatch(r"random:(\d+)", spec):
        n = int(m.group(1))
        if n < 1:
            raise ValueError(f"start {spec!r}: N must be at least 1")
        return Start(model.sample_prior(n, seed=seed), None, None, spec)
    if m := re.fullmatch(r"test:(\d+)-(\d+)", spec):
        a, b = int(m.group(1)), int(m.group(2))
        images, labels = mnist("test", data_root)
        if not a <= b < len(images):
            raise ValueError(f"start {spec!r}: indices must satisfy 0 <= A <= B < {len(images)}")
        x = torch.as_tensor(images[a : b + 1])
        return Start(model.encode(x), x, labels[a : b + 1], spec)
    path = Path(spec)
    if ":" in spec and not path.exists():
        raise ValueError(f"bad start {spec!r}; accepted: {SPEC_HELP}")
    if not path.exists():
        raise ValueError(
            f"start {spec!r} is neither a spec nor an existing path; accepted: {SPEC_HELP}"
        )
    arr, _ = read_images(path)
    batch = as_image_batch(arr)
    x = torch.as_tensor(batch / 255.0 if batch.dtype == np.uint8 else batch, dtype=torch.float32)
    if x.shape[1:] != (28, 28):
        raise ValueError(f"start images must be 28x28; {spec} holds {tuple(x.shape[1:])}")
    return Start(model.encode(x), x, None, spec)
