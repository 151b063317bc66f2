"""Charts (matplotlib), written atomically as PNG: curves, scatter plots, confusion matrices.

Domain-free: a domain draws its own samples (e.g. :mod:`latentsteer.domains.mnist.grids`)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from latentsteer.atomic import atomic_file  # noqa: E402


def save_figure(fig: plt.Figure, path: str | os.PathLike[str]) -> None:
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
    save_figure(fig, path)
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
    save_figure(fig, path)


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
    save_figure(fig, path)


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
    save_figure(fig, path)
