"""The comparison report: every experiment's oracle-verified results, task by task.

Experiments that share a ``task`` (``params.yaml: experiments.<name>.task``, by default the
experiment's own name) are the same problem solved by different methods. For each one the
report reads ``results/<name>/metrics.json`` and ``trajectory.npz`` and puts side by side:
oracle success, the heads' own (predicted) success, the measured change and how far the
heads' prediction is from it, realism, diversity, model calls and wall time.

Methods of one task may run on different numbers of starts (Bayesian optimisation is slow
per call, so it gets fewer). When their starts are prefixes of one another — the same
``random:N`` seed, or ``test:A-B`` ranges from the same ``A`` — the report also compares
every method on the starts they all share, from the per-sample oracle success each
experiment stores.

An entry with ``replicate: NAME`` repeats experiment ``NAME`` on other starts (another
seed). It gets no row of its own: NAME's row shows the mean and the worst seed of the
oracle success over NAME and its replicates, so a headline number comes with its spread.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentsteer.errors import LatentsteerError
from latentsteer.oracles import frechet_distance

GRADIENT_FREE = ("random_search", "cmaes", "bayesopt")


class MissingResults(LatentsteerError, FileNotFoundError):
    """An experiment in params.yaml has no results yet (reported as one line by the stage)."""


@dataclass
class Entry:
    """One experiment's results.

    Attributes:
        name: the experiment (``results/<name>``).
        task: the task it belongs to.
        method: ``latent``, ``data_space`` or a gradient-free method.
        start: its start spec; ``seed`` the seed of its prior draws.
        metrics: its ``metrics.json``.
        success: ``(n,)`` per-sample oracle success (every goal).
        success_by_frame, calls_by_frame: ``(F,)`` oracle success against mean model calls.
        first, last: ``(k, *sample_shape)`` the first ``k`` samples at the start and the end.
    """

    name: str
    task: str
    method: str
    start: str
    seed: int
    metrics: dict[str, Any]
    success: np.ndarray
    success_by_frame: np.ndarray
    calls_by_frame: np.ndarray
    first: np.ndarray = field(repr=False)
    last: np.ndarray = field(repr=False)
    replicate: str | None = None
    goals: tuple[str, ...] = ()
    features_start: np.ndarray | None = field(default=None, repr=False)
    features_end: np.ndarray | None = field(default=None, repr=False)


def collect(
    results: str | Path, experiments: dict[str, dict], examples: int = 6, stage: str | None = None
) -> list[Entry]:
    """Read every experiment under ``results`` that ``experiments`` (params.yaml) declares.

    ``stage`` names the DVC stage that writes them (``optimize@<name>`` by default), for
    the message when results are missing.

    Raises:
        MissingResults: an experiment's results are missing (naming the experiment).
    """
    entries = []
    for name, settings in experiments.items():
        folder = Path(results) / name
        metrics_file, trajectory = folder / "metrics.json", folder / "trajectory.npz"
        if not (metrics_file.is_file() and trajectory.is_file()):
            raise MissingResults(
                f"no results for experiment {name!r} in {folder} "
                f"(run dvc repro {stage or f'optimize@{name}'})"
            )
        metrics = json.loads(metrics_file.read_text())
        with np.load(trajectory) as t:
            if "success" not in t.files:
                raise ValueError(
                    f"{trajectory} predates per-sample results; "
                    f"re-run {stage or f'optimize@{name}'}"
                )
            images = t["images"]
            entries.append(
                Entry(
                    name=name,
                    task=str(settings.get("task") or name),
                    method=str(settings.get("method", "latent")),
                    start=str(settings.get("start", metrics.get("start", ""))),
                    seed=int(settings.get("seed", 0)),
                    metrics=metrics,
                    success=t["success"].astype(bool),
                    success_by_frame=t["success_by_frame"],
                    calls_by_frame=t["calls_by_frame"],
                    first=images[0, :examples],
                    last=images[-1, :examples],
                    replicate=settings.get("replicate"),
                    goals=tuple(settings.get("goals") or ()),
                    features_start=t["features_start"] if "features_start" in t.files else None,
                    features_end=t["features_end"] if "features_end" in t.files else None,
                )
            )
    return entries


def tasks(entries: list[Entry]) -> dict[str, list[Entry]]:
    """Entries grouped by task, in the order they first appear (replicates left out)."""
    out: dict[str, list[Entry]] = {}
    for e in entries:
        if e.replicate is None:
            out.setdefault(e.task, []).append(e)
    return out


def seeds(entries: list[Entry]) -> dict[str, list[Entry]]:
    """Each replicated experiment's name → itself and its replicates (seed order as given).

    Raises:
        ValueError: a replicate names an experiment that is not there.
    """
    by_name = {e.name: e for e in entries}
    out: dict[str, list[Entry]] = {}
    for e in entries:
        if e.replicate is None:
            continue
        if e.replicate not in by_name:
            raise ValueError(f"{e.name}: replicate {e.replicate!r} is not an experiment")
        out.setdefault(e.replicate, [by_name[e.replicate]]).append(e)
    return out


SEED_METRICS = ("success_rate", "predicted_success_rate", "success_gap")


def seed_spread(group: list[Entry]) -> dict[str, float | int | None]:
    """Mean and worst seed of the headline numbers of one experiment and its replicates.

    "Worst" is the lowest oracle success (the highest gap for ``success_gap``); also the
    same for each goal's ``_within_tol`` share and, for each class goal (MNIST: the digit
    kept), its success on confident starts where the experiment reports them.
    """
    out: dict[str, float | int | None] = {"seeds": len(group)}
    metrics = group[0].metrics
    keys = list(SEED_METRICS) + [
        k for k in metrics if k.endswith("_within_tol") or k in _class_confident_keys(metrics)
    ]
    for key in keys:
        values = [e.metrics.get(key) for e in group]
        if any(v is None for v in values):
            out[f"{key}_seed_mean"] = out[f"{key}_worst_seed"] = None
            continue
        out[f"{key}_seed_mean"] = float(np.mean(values))
        out[f"{key}_worst_seed"] = float(max(values) if key == "success_gap" else min(values))
    return out


# grading writes `<key>_judge_confidence_end` for each class goal (the judge's confidence in
# the class it reads at the end) and `success_<key>_confident` for each verified goal.
JUDGED = "_judge_confidence_end"


def _class_confident_keys(metrics: dict[str, Any]) -> set[str]:
    """``success_<key>_confident`` for each class goal ``<key>`` (e.g. ``digit``) of
    ``metrics``: that goal's oracle success on the starts no judge doubts."""
    return {f"success_{k[: -len(JUDGED)]}_confident" for k in metrics if k.endswith(JUDGED)}


def _start_family(e: Entry) -> tuple[str, int] | None:
    """Starts of the same family are prefixes of one another (see the module doc)."""
    if re.fullmatch(r"random:\d+", e.start):
        return ("random", e.seed)
    if m := re.fullmatch(r"test:(\d+)-\d+", e.start):
        return ("test", int(m.group(1)))
    return None


def shared_success(group: list[Entry]) -> dict[str, float]:
    """Oracle success of each entry on the starts every entry of the group shares.

    Returns:
        name → success rate on the first ``min(n)`` starts; empty when the group's starts
        are not prefixes of one another, or all have the same number.
    """
    families = {_start_family(e) for e in group}
    sizes = {len(e.success) for e in group}
    if len(families) != 1 or None in families or len(sizes) == 1:
        return {}
    k = min(sizes)
    return {e.name: float(e.success[:k].mean()) for e in group}


def _goal_key(metrics: dict[str, Any]) -> str | None:
    """The first goal whose change the oracles measure (e.g. ``thickness``)."""
    for key in metrics:
        if key.endswith("_measured_change"):
            return key[: -len("_measured_change")]
    return None


def table(entries: list[Entry]) -> pd.DataFrame:
    """One row per experiment, grouped by task: the report's numbers."""
    rows = []
    spread = {name: seed_spread(group) for name, group in seeds(entries).items()}
    for task, group in tasks(entries).items():
        shared = shared_success(group)
        for e in group:
            m, key = e.metrics, _goal_key(e.metrics)
            s = spread.get(e.name, {})
            within = next((k for k in m if k.endswith("_within_tol")), None)
            rows.append(
                {
                    "task": task,
                    "experiment": e.name,
                    "method": e.method,
                    "starts": len(e.success),
                    "oracle_success": m["success_rate"],
                    "predicted_success": m["predicted_success_rate"],
                    "success_gap": m.get("success_gap"),
                    "guide_success": m.get("guide_success_rate"),
                    "within_tol": m.get(within) if within else None,
                    "seeds": s.get("seeds", 1),
                    "oracle_success_seed_mean": s.get("success_rate_seed_mean"),
                    "oracle_success_worst_seed": s.get("success_rate_worst_seed"),
                    "success_on_shared_starts": shared.get(e.name),
                    "measured_property": key,
                    "measured_change": m.get(f"{key}_measured_change") if key else None,
                    "predicted_minus_measured": m.get(f"{key}_gap") if key else None,
                    "realism_matched_ratio": m.get("realism_matched_ratio"),
                    "realism_ratio": m.get("realism_ratio"),
                    "diversity_ratio": m.get("diversity_ratio"),
                    "model_calls": m["model_calls"],
                    "wall_s": m["wall_s"],
                }
            )
    return pd.DataFrame(rows)


def calls_to_reach(e: Entry, level: float) -> float | None:
    """Mean model calls per sample by the first frame whose oracle success reaches ``level``."""
    hit = np.nonzero(e.success_by_frame >= level - 1e-9)[0]
    return float(e.calls_by_frame[hit[0]]) if len(hit) else None


def findings(entries: list[Entry]) -> list[str]:
    """The claims the report checks, as sentences with the measured numbers."""
    out = []
    for e in entries:
        if e.method == "data_space":
            m = e.metrics
            out.append(
                f"`{e.name}` (ascent on pixels): the heads report {m['predicted_success_rate']:.1%}"
                f" success, the oracles measure {m['success_rate']:.1%}."
            )
    for task, group in tasks(entries).items():
        latent = [e for e in group if e.method == "latent"]
        free = [e for e in group if e.method in GRADIENT_FREE]
        if not latent or not free:
            continue
        shared = shared_success(group)

        def rate(e: Entry, shared: dict[str, float] = shared) -> float:
            return shared.get(e.name, e.metrics["success_rate"])

        ours = latent[0]
        best = max(free, key=rate)
        ours_calls = ours.metrics["model_calls"]
        best_calls = best.metrics["model_calls"]
        where = f", on the {min(len(e.success) for e in group)} shared starts" if shared else ""
        verdict = "matches or beats" if rate(ours) >= rate(best) - 0.005 else "falls short of"
        text = (
            f"`{task}`: latent gradient ascent ({ours.name}) {verdict} the best gradient-free "
            f"baseline, {best.method} ({best.name}){where}: {rate(ours):.1%} against "
            f"{rate(best):.1%} oracle success, with {ours_calls:.0f} against {best_calls:.0f} "
            f"model calls per sample"
        )
        key = _goal_key(ours.metrics)
        if key and f"{key}_measured_change" in best.metrics:
            # For an open-ended goal any gain is a success; how far each got tells them apart.
            text += (
                f" (measured {key} change {ours.metrics[f'{key}_measured_change']:+.2f} against "
                f"{best.metrics[f'{key}_measured_change']:+.2f})"
            )
        reach = calls_to_reach(ours, rate(best))
        if reach is not None:
            text += (
                f"; the ascent reaches {rate(best):.1%} (on all its {len(ours.success)} starts) "
                f"after {reach:.0f} calls, {reach / best_calls:.2f}x the baseline's"
            )
        out.append(text + ".")
    return out


def pooled_realism(parts: list[Entry], reference: np.ndarray) -> float | None:
    """Realism of several experiments' samples pooled: Fréchet distance of the pooled final
    samples to the real ``reference`` features, over that of their pooled starts.

    The ten ``digit=K`` experiments each turn every start into one class, which the plain
    score counts as unrealistic even when each digit is a fine K; pooled (balanced over the
    classes, with a thickness task) the set is again a mix of digits like the reference.
    Both sides have the same number of samples, so the ratio does not depend on it.

    Returns:
        The ratio, or ``None`` when an experiment stored no features.
    """
    if not parts or any(e.features_start is None or e.features_end is None for e in parts):
        return None
    starts = np.concatenate([e.features_start for e in parts])  # type: ignore[misc]
    ends = np.concatenate([e.features_end for e in parts])  # type: ignore[misc]
    return frechet_distance(ends, reference) / max(frechet_distance(starts, reference), 1e-9)


def realism_findings(entries: list[Entry], reference: np.ndarray) -> list[str]:
    """The pooled realism of the class-only experiments (``digit=K``) with each latent
    experiment that has a regression goal, as sentences."""
    originals = [e for e in entries if e.replicate is None and e.method == "latent"]
    classes = [e for e in originals if e.goals and all(re.fullmatch(r"\w+=\d+", g)
                                                          for g in e.goals)]  # fmt: skip
    others = [e for e in originals if e not in classes and e.metrics.get("realism_ratio")]
    out = []
    for e in others:
        if not any(k.endswith("_measured_change") for k in e.metrics):
            continue
        ratio = pooled_realism([*classes, e], reference)
        if ratio is not None and classes:
            out.append(
                f"realism of the {len(classes)} class experiments pooled with `{e.name}`: "
                f"{ratio:.2f}x their starts (plain Fréchet score, all samples)."
            )
    return out


def truth_findings(entries: list[Entry]) -> list[str]:
    """Where the heads and the certifying oracles disagree by more than 5 points, each with
    the same comparison on the confident starts where the metrics count them."""
    out = []
    for e in entries:
        m = e.metrics
        if e.replicate is not None or m.get("success_rate") is None:
            continue
        gap = m["predicted_success_rate"] - m["success_rate"]
        if abs(gap) > 0.05:
            line = (
                f"`{e.name}` ({e.method}): the heads claim {m['predicted_success_rate']:.1%}, "
                f"the oracles certify {m['success_rate']:.1%} ({gap:+.1%})."
            )
            sure, heads = m.get("success_rate_confident"), m.get("predicted_success_rate_confident")
            if _finite(sure) and _finite(heads) and "ambiguous_starts" in m:
                line += (
                    f" On the {m['n'] - m['ambiguous_starts']} confident starts: "
                    f"{heads:.1%} against {sure:.1%} ({heads - sure:+.1%})."
                )
            out.append(line)
    return out


def _finite(value: Any) -> bool:
    """A number that is neither missing nor NaN."""
    return isinstance(value, int | float) and not np.isnan(value)


COLUMNS = {
    "task": "task",
    "experiment": "experiment",
    "method": "method",
    "starts": "n",
    "oracle_success": "oracle success",
    "predicted_success": "heads' success",
    "guide_success": "in-loop oracles' success",
    "within_tol": "within tol",
    "oracle_success_seed_mean": "seeds: mean",
    "oracle_success_worst_seed": "seeds: worst",
    "success_on_shared_starts": "on shared starts",
    "measured_change": "measured change",
    "predicted_minus_measured": "predicted − measured",
    "realism_matched_ratio": "realism (matched)",
    "diversity_ratio": "diversity",
    "model_calls": "model calls",
    "wall_s": "wall s",
}


@dataclass(frozen=True)
class Wording:
    """How the report's text names a domain's oracles, units and samples; a domain's report
    stage passes its own (the defaults name none).

    Attributes:
        oracles: what measures and judges the samples (MNIST: ``Morpho-MNIST measures of
            the decoded image, the certifier's digit``).
        change_unit: the unit of the first measured goal's change, in the column legend,
            with its leading space (MNIST: `` (px for thickness)``); empty for none.
        realism_reference: the real samples the matched realism score compares with (MNIST:
            ``real digits of the same class and thickness``).
    """

    oracles: str = "the domain's measures of the decoded sample, the certifier's class"
    change_unit: str = " (in the property's units)"
    realism_reference: str = "real samples of the same class"


def markdown(
    frame: pd.DataFrame, claims: list[str], links: dict[str, str], wording: Wording = Wording()
) -> str:
    """``reports/optimize.md``: the table, the findings, and what each column means, worded
    by ``wording``."""

    def cell(col: str, v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "–"
        if col in ("oracle_success", "predicted_success", "success_on_shared_starts",
                   "guide_success", "within_tol", "oracle_success_seed_mean",
                   "oracle_success_worst_seed"):  # fmt: skip
            return f"{v:.1%}"
        if col in ("measured_change", "predicted_minus_measured"):
            return f"{v:+.2f}"
        if col in ("realism_matched_ratio", "diversity_ratio"):
            return f"{v:.2f}×"
        if col in ("model_calls", "wall_s"):
            return f"{v:.0f}" if v >= 10 else f"{v:.1f}"
        return str(v)

    head = "| " + " | ".join(COLUMNS.values()) + " |"
    lines = [
        "# Steering results: task × method",
        "",
        f"Every success figure is measured by the oracles ({wording.oracles}: a judge the "
        "steering loop never saw). Written by the `report` stage from "
        "`results/*/metrics.json`; do not edit by hand.",
        "",
        "## Findings",
        "",
        *[f"- {c}" for c in claims],
        "",
        "## Table",
        "",
        head,
        "|" + "---|" * len(COLUMNS),
    ]
    for row in frame.to_dict("records"):
        cells = [cell(c, row[c]) for c in COLUMNS]
        if row["experiment"] in links:
            cells[1] = f"[{row['experiment']}]({links[row['experiment']]})"
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Columns: *oracle success* — share of samples meeting every goal, by the certifying "
        "oracles, on the experiment's own seed; *heads' success* — the same rules applied to "
        "the model's own heads; *in-loop oracles' success* — the same rules as read by the "
        "oracles inside the closed loop (the guide judge instead of the certifier); *within "
        "tol* — for a `+D` or `VALUE` goal, the share of samples measured within the "
        "property's tolerance of what was asked; *seeds: mean, worst* — oracle success over "
        "the experiment and its replicates (other starts); *on shared "
        "starts* — oracle success on the starts every method of the task ran from; *measured "
        f"change* — mean measured change of the first measured goal{wording.change_unit}; "
        "*predicted − measured* — the heads' final value minus the measured one; *realism "
        f"(matched)* — Fréchet distance in the certifier's features to "
        f"{wording.realism_reference}, at a fixed 100 samples, end over start; *diversity* — mean "
        "pairwise feature distance, "
        "end over start; *model calls* — objective evaluations per sample (a gradient step "
        "is one forward and one backward pass).",
        "",
    ]
    return "\n".join(lines)


def summary(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``reports/summary.json``: the table's numbers per experiment (DVC metrics)."""
    out: dict[str, dict[str, Any]] = {}
    for row in frame.to_dict("records"):
        name = row.pop("experiment")
        out[name] = {
            k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()
        }
    return out


def curve_table(entries: list[Entry]) -> pd.DataFrame:
    """Long table of oracle success against model calls, one row per recorded frame."""
    rows = [
        {"task": e.task, "experiment": e.name, "method": e.method,
         "model_calls": float(c), "success": float(s)}
        for e in entries
        for c, s in zip(e.calls_by_frame, e.success_by_frame, strict=True)
    ]  # fmt: skip
    return pd.DataFrame(rows)
