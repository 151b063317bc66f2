"""Figures: image grids (torchvision) and charts (matplotlib), written atomically as PNG."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid, save_image  # noqa: E402

from latentsteer.atomic import atomic_file  # noqa: E402


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


def _save_figure(fig: plt.Figure, path: str | os.PathLike[str]) -> None:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def save_confusion(
    truth: np.ndarray, pred: np.ndarray, path: str | os.PathLike[str], title: str
) -> np.ndarray:
    """Plot and return the ``(10, 10)`` confusion matrix (rows: truth, columns: prediction)."""
    cm = np.zeros((10, 10), dtype=np.int64)
    np.add.at(cm, (truth, pred), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(np.log1p(cm), cmap="Blues")
    for i in range(10):
        for j in range(10):
            if cm[i, j]:
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")  # fmt: skip
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    _save_figure(fig, path)
    return cm


def save_scatter(
    x: np.ndarray, y: np.ndarray, path: str | os.PathLike[str], xlabel: str, ylabel: str,
    title: str,
) -> None:  # fmt: skip
    """Scatter of ``y`` against ``x`` with the identity line."""
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.scatter(x, y, s=3, alpha=0.3, linewidths=0)
    lo, hi = float(np.nanmin([x.min(), y.min()])), float(np.nanmax([x.max(), y.max()]))
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="y = x")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(loc="upper left")
    _save_figure(fig, path)


def save_curves(
    curves: dict[str, dict[str, np.ndarray]], path: str | os.PathLike[str], title: str = ""
) -> None:
    """One panel per goal: predicted and measured value per step, mean ± one sd.

    Args:
        curves: goal → ``{"step", "predicted", "predicted_sd"[, "measured", "measured_sd"]}``
            arrays of equal length (see :func:`latentsteer.experiment.curves`).
        path: output PNG.
        title: figure title.
    """
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False)
    for ax, (goal, c) in zip(axes[0], curves.items(), strict=True):
        for key, colour, label in (("predicted", "C0", "heads (predicted)"),
                                   ("measured", "C3", "oracle (measured)")):  # fmt: skip
            if key not in c:
                continue
            mean, sd = c[key], c[f"{key}_sd"]
            ax.plot(c["step"], mean, color=colour, label=label)
            ax.fill_between(c["step"], mean - sd, mean + sd, color=colour, alpha=0.2)
        ax.set_title(goal)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    _save_figure(fig, path)


def save_success_curves(
    panels: dict[str, list[tuple[str, np.ndarray, np.ndarray]]], path: str | os.PathLike[str]
) -> None:
    """Oracle success against model calls: one panel per task, one line per method.

    Args:
        panels: task → ``(label, calls (F,), success (F,))`` per method.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (task, lines) in zip(axes[0], panels.items(), strict=True):
        for label, calls, success in lines:
            ax.plot(calls, success, marker="o", markersize=3, label=label)
        ax.set(xscale="log", ylim=(-0.02, 1.02), xlabel="model calls per sample (mean)",
               ylabel="oracle success", title=task)  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save_figure(fig, path)


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
    _save_figure(fig, path)
