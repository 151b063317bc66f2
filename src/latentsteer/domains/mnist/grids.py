"""Digit figures: image grids (torchvision) and start/end example strips, written as PNG."""

from __future__ import annotations

import os

import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from latentsteer.atomic import atomic_file
from latentsteer.plots import plt, save_figure


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], scale: int = 2) -> None:
    """Save ``(rows, cols, 28, 28)`` images in [0, 1] as one PNG grid, rows top to bottom.

    ``scale`` enlarges each pixel (nearest neighbour) so the grid is readable in a browser.
    """
    rows, cols = images.shape[:2]
    flat = images.reshape(rows * cols, 1, *images.shape[2:]).float().clamp(0, 1)
    if scale > 1:
        flat = flat.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    grid = make_grid(flat, nrow=cols, padding=2, pad_value=0.5)
    with atomic_file(path) as tmp:
        save_image(grid, tmp, format="png")


def save_examples(
    rows: list[tuple[str, np.ndarray, np.ndarray]], path: str | os.PathLike[str]
) -> None:
    """Example outcomes: per row a method's first samples, start above and end below.

    Args:
        rows: ``(label, start (k, 28, 28), end (k, 28, 28))`` per method.
    """
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.9 * len(rows)), squeeze=False)
    for ax, (label, first, last) in zip(axes[:, 0], rows, strict=True):
        pair = np.concatenate([np.concatenate(list(first), 1), np.concatenate(list(last), 1)], 0)
        ax.imshow(pair, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([14, 42], ["start", "end"], fontsize=7)
        ax.set_title(label, fontsize=9, loc="left")
    save_figure(fig, path)
