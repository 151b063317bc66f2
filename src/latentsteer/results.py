"""The outcome of the engine's trajectories (:class:`Outcome`), the files it leaves:
``trajectory.npz``, ``grid.png``, ``curves.png`` and ``metrics.json`` (described in
:mod:`latentsteer.experiment`), and a run's one-line summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentsteer.ascent import SteerResult
from latentsteer.atomic import atomic_file, write_json
from latentsteer.domain import OracleReport, Start
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.plots import save_curves


@dataclass
class Outcome:
    """A finished experiment: its path, oracle readings and metrics."""

    config: ExperimentConfig
    start: Start
    result: SteerResult
    frames: np.ndarray  # (F,) recorded steps
    images: torch.Tensor  # (F, n, *sample_shape) the decoded path at those steps
    frame_reports: list[OracleReport]  # oracle readings of every recorded frame
    metrics: dict[str, float | int | str]
    per_sample: dict[str, np.ndarray]  # (n,) success, predicted_success, ...; (n, f) features
    per_frame: dict[str, np.ndarray]  # (F,) success_by_frame, calls_by_frame (success_curve)

    def write(self, folder: str | Path) -> None:
        """``trajectory.npz``, ``grid.png``, ``curves.png`` and ``metrics.json`` in
        ``folder`` (:func:`latentsteer.results.write_results`)."""
        write_results(self, folder)


def write_results(outcome: Outcome, folder: str | Path, rows: int = 8, cols: int = 10) -> None:
    """Write ``trajectory.npz``, ``grid.png``, ``curves.png`` and ``metrics.json`` to ``folder``.

    Each file is written to a temporary name and renamed, so an interrupted run never
    leaves a half-written one.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    res, frames = outcome.result, outcome.frames
    arrays = {
        "images": outcome.images.numpy().astype(np.float32),
        "z": res.z[frames].numpy().astype(np.float32),
        "step": frames.astype(np.int64),
        "stop_step": res.stop_step.numpy(),
        "stop_reason": np.array(res.stop_reason),
        **outcome.per_sample,
        **outcome.per_frame,
    }
    for name, values in res.predicted.items():
        arrays[f"predicted_{name}"] = values[frames].numpy().astype(np.float32)
    with atomic_file(folder / "trajectory.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)

    shown = min(rows, outcome.images.shape[1])
    picks = np.linspace(0, len(frames) - 1, min(cols, len(frames))).round().astype(int)
    picks = np.unique(picks)  # evenly spread recorded steps, first and last included
    grid = outcome.images[picks][:, :shown].transpose(0, 1)  # (rows, cols, *sample_shape)
    outcome.result.model.domain.save_grid(grid, folder / "grid.png")

    save_curves(curves(outcome), folder / "curves.png", title=_title(outcome))
    write_json(outcome.metrics, folder / "metrics.json")


def _title(outcome: Outcome) -> str:
    cfg = outcome.config
    return f"{cfg.method}: {', '.join(cfg.goals)} from {cfg.start}"


def curves(outcome: Outcome) -> dict[str, dict[str, np.ndarray]]:
    """Per goal, predicted and measured mean and sd at every recorded step.

    Returns:
        goal text → ``{"step", "predicted", "predicted_sd", "measured", "measured_sd"}``
        (``measured`` absent when no oracle reads that property). For class goals the
        values are probabilities of the goal's class: the head's and the judge's.
    """
    model, res, frames = outcome.result.model, outcome.result, outcome.frames
    reports = outcome.frame_reports
    out: dict[str, dict[str, np.ndarray]] = {}
    for spec in outcome.config.specs:
        head = model.head_spec(spec.prop)
        pred = res.predicted[spec.prop][frames]  # (F, n) or (F, n, k)
        entry: dict[str, np.ndarray] = {"step": frames}
        if head.kind == "regression":
            entry["predicted"], entry["predicted_sd"] = _mean_sd(pred.numpy())
            if head.column in reports[0].measures.columns:
                measured = np.stack([r.measures[head.column].to_numpy() for r in reports])
                entry["measured"], entry["measured_sd"] = _mean_sd(measured)
        else:
            if spec.kind == "keep":
                k = pred[0].argmax(1).numpy()  # the head's class at the start
            else:
                k = np.full(pred.shape[1], int(spec.value))  # type: ignore[arg-type]
            picked = np.take_along_axis(pred.numpy(), k[None, :, None], axis=2)[..., 0]
            entry["predicted"], entry["predicted_sd"] = _mean_sd(picked)
            if head.column == reports[0].class_column:
                if spec.kind == "keep":  # the digit the oracle keeps to (as in assess)
                    labels = outcome.start.labels
                    k = labels if labels is not None else reports[0].label
                judged = np.stack([r.probabilities[np.arange(len(k)), k] for r in reports])
                entry["measured"], entry["measured_sd"] = _mean_sd(judged)
        out[spec.text] = entry
    return out


def _mean_sd(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nanmean(values, axis=1), np.nanstd(values, axis=1)


def summary_line(m: dict) -> str:
    """One line of an experiment's headline numbers (for the stage and the CLI)."""

    def pct(key: str) -> str:
        value = m.get(key)
        return "unverified" if value is None else f"{value:.1%}"

    line = (
        f"{m['n']} samples; oracle success {pct('success_rate')} (certified by "
        f"{m['certified_by']}), heads' success {pct('predicted_success_rate')}"
    )
    if m.get("guide_success_rate") is not None:
        line += f", in-loop oracles' {pct('guide_success_rate')}"
    if m.get("unverified_goals"):
        line += f"; unverified goals: {m['unverified_goals']}"
    if m.get("realism_ratio") is not None:
        line += f"; realism x{m['realism_ratio']:.2f}"
    return line + f"; {m['oracle_calls']:.0f} oracle calls a start, {m['wall_s']:.1f} s"
