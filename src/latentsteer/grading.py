"""Grading a finished run: per goal and per sample, the certifying oracle's verdict next to
the heads' and the in-loop oracle's, and the run's metrics (the success rules are
:mod:`latentsteer.rules`', shared with the closed loop and with every domain)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import torch

from latentsteer.ascent import SteerResult
from latentsteer.context import Context, safeguards
from latentsteer.domain import OracleReport, Start
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.goalspec import GoalSpec
from latentsteer.learned.card import PropertyCard
from latentsteer.model import MultiHeadVAE
from latentsteer.oracles import frechet_at_fixed_n, matched_reference
from latentsteer.rules import goal_rule
from latentsteer.safeguards import (
    manifold_scores,
)
from latentsteer.tolerances import goal_tolerance

CONFIDENT = 0.9  # a start both judges read alike with at least this probability is "confident"


def _oracle_value(spec: GoalSpec, model: MultiHeadVAE, report: OracleReport) -> np.ndarray | None:
    """The oracle's reading of the goal's property: a measure, or the judge's class."""
    head = model.head_spec(spec.prop)
    if head.kind == "regression":
        columns = report.measures.columns
        return report.measures[head.column].to_numpy() if head.column in columns else None
    return report.label if head.column == report.class_column else None


def goal_success(
    spec: GoalSpec,
    model: MultiHeadVAE,
    start: Start,
    p0: torch.Tensor,
    p1: torch.Tensor,
    first: OracleReport,
    last: OracleReport,
    tolerances: dict[str, float] | None = None,
    keep_reference: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-sample success ``(n,)`` of one goal: by the oracles, and by the heads.

    Args:
        p0, p1: the goal's head predictions at the start and the end, ``(n,)`` values or
            ``(n, k)`` probabilities.
        first, last: the certifying oracles' readings of the start and the end images.
        tolerances: per-property tolerance overrides of the domain's table.
        keep_reference: ``(n,)`` the class a ``keep`` goal asked the heads to keep (the
            guide's reading of the start); default the heads' own class at the start.

    Returns:
        ``(oracle, heads)``. ``oracle`` is ``None`` where no oracle reads the property: such
        a goal is *unverified*, and the heads' word is never counted as oracle success.
    """
    measured0, measured1 = _oracle_value(spec, model, first), _oracle_value(spec, model, last)
    head = model.head_spec(spec.prop)
    if head.kind == "regression":
        tol = goal_tolerance(head.column, tolerances, model.domain.tolerances)
        good_pred = goal_rule(spec, p0.numpy(), p1.numpy(), tol)[1]
        if measured0 is None:
            return None, good_pred
        return goal_rule(spec, measured0, measured1, tol)[1], good_pred
    c0, c1 = p0.argmax(1).numpy(), p1.argmax(1).numpy()
    if spec.kind == "keep":
        good_pred = c1 == (c0 if keep_reference is None else keep_reference)
        if measured0 is None:
            return None, good_pred
        # The start's class is the truth for real samples, else what the certifier saw.
        ref = start.labels if start.labels is not None else measured0
        return measured1 == ref, good_pred
    good_pred = c1 == int(spec.value)  # type: ignore[arg-type]
    if measured1 is None:
        return None, good_pred
    return measured1 == int(spec.value), good_pred  # type: ignore[arg-type]


def success_curve(
    cfg: ExperimentConfig,
    model: MultiHeadVAE,
    start: Start,
    result: SteerResult,
    frames: np.ndarray,
    reports: list[OracleReport],
    keep_reference: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Oracle success against model calls along the path, one value per recorded frame.

    Returns:
        ``success_by_frame`` ``(F,)``: share of samples meeting every verified goal by the
        certifying oracles at that frame; ``calls_by_frame`` ``(F,)``: mean model calls per
        sample spent by then.
    """
    rates = []
    for i, step in enumerate(frames):
        ok = np.ones(len(result.stop_step), dtype=bool)
        for spec in cfg.specs:
            pred = result.predicted[spec.prop]
            good, _ = goal_success(
                spec, model, start, pred[0], pred[step], reports[0], reports[i],
                cfg.oracle_tol, keep_reference,
            )  # fmt: skip
            if good is not None:
                ok &= good
        rates.append(ok.mean())
    assert result.calls_path is not None
    calls = result.calls_path[frames.tolist()].float().mean(dim=1).numpy()
    return {"success_by_frame": np.array(rates), "calls_by_frame": calls}


def assess(
    cfg: ExperimentConfig,
    ctx: Context,
    start: Start,
    result: SteerResult,
    first_images: torch.Tensor,
    last_images: torch.Tensor,
    first: OracleReport,
    last: OracleReport,
    keep_reference: np.ndarray | None = None,
    guide_class: np.ndarray | None = None,
    guide_first: np.ndarray | None = None,
) -> tuple[dict[str, float | int | str | None], dict[str, np.ndarray]]:
    """Metrics of a finished run, every success figure from the certifying oracles.

    Args:
        first, last: the certifying oracles' readings (measures and the certifier).
        keep_reference: see :func:`goal_success`.
        guide_first: ``(n, k)`` the guide judge's probabilities for the start samples: a
            start is *confident* when both judges read it as the same class with at least
            ``CONFIDENT`` (with one judge, when ``None``).
        guide_class: ``(n,)`` the guide judge's reading of the final samples, for
            ``guide_success_rate`` (what the in-loop oracles believed).

    Returns:
        The metrics, and per sample ``(n,)``: ``success`` (every verified goal, by the
        certifying oracles), ``predicted_success`` (by the heads), ``guide_success`` (by the
        in-loop oracles) and ``model_calls``.
    """
    model = ctx.model
    n = len(result.stop_step)
    guided = cfg.method != "data_space" and cfg.guide
    m: dict[str, Any] = {"n": n, "method": cfg.method, "goals": list(cfg.goals),
                         "start": cfg.start}  # fmt: skip
    # Which oracles steered or stopped the samples, and which graded them: never the same
    # learned model in both roles.
    m["in_loop_oracles"] = ctx.oracle.describe if guided else "none"
    m["certified_by"] = ctx.grader.describe
    m["reference_data"] = ctx.reference_data
    # Confident: no oracle doubts which class the start is. Where two independent judges
    # read a drawing differently, "keep the class" has no single answer to check against.
    confident = first.confidence >= CONFIDENT
    if guide_first is not None:
        confident &= (guide_first.max(1) >= CONFIDENT) & (guide_first.argmax(1) == first.label)
    m["ambiguous_starts"] = int((~confident).sum())
    ok_oracle = np.ones(n, dtype=bool)
    ok_pred = np.ones(n, dtype=bool)
    ok_guide = np.ones(n, dtype=bool)
    # Learned goals: samples outside an oracle's domain, and every goal graded with the
    # exact measure in place of a learned oracle where the table came from one (a check of
    # the learned oracle; a user's own property has no exact measure).
    outside = np.zeros(n, dtype=bool)
    ok_exact = np.ones(n, dtype=bool)
    learned_goals = exact_goals = 0
    unverified = []
    for spec, key in zip(cfg.specs, goal_keys(cfg.specs), strict=True):
        head = model.head_spec(spec.prop)
        exact_done = False
        p0, p1 = result.predicted[spec.prop][0], result.predicted[spec.prop][-1]
        measured0 = _oracle_value(spec, model, first)
        measured1 = _oracle_value(spec, model, last)
        good, good_pred = goal_success(
            spec, model, start, p0, p1, first, last, cfg.oracle_tol, keep_reference
        )
        if head.kind == "regression":
            p0, p1 = p0.numpy(), p1.numpy()
            m[f"{key}_predicted_start"] = float(p0.mean())
            m[f"{key}_predicted_end"] = float(p1.mean())
            m[f"{key}_predicted_change"] = float((p1 - p0).mean())
            if measured0 is not None:
                change = measured1 - measured0
                m[f"{key}_measured_start"] = float(np.nanmean(measured0))
                m[f"{key}_measured_end"] = float(np.nanmean(measured1))
                m[f"{key}_measured_change"] = float(np.nanmean(change))
                m[f"{key}_measured_change_sd"] = float(np.nanstd(change))
                m[f"{key}_share_increased"] = float((change > 0).mean())
                m[f"{key}_gap"] = float(np.nanmean(p1 - measured1))  # predicted − measured
                m[f"{key}_abs_gap"] = float(np.nanmean(np.abs(p1 - measured1)))
                if spec.kind in ("change", "number"):
                    # Per sample: measured within tolerance of what was asked.
                    m[f"{key}_tol"] = goal_tolerance(
                        head.column, cfg.oracle_tol, model.domain.tolerances
                    )
                    m[f"{key}_within_tol"] = float(good.mean())  # type: ignore[union-attr]
                card = ctx.learned.get(head.column)
                if card is not None:
                    learned_goals += 1
                    outside |= np.isnan(measured1)
                    exact = _learned_goal(m, key, spec, card, first, last, good)
                    if exact is not None:
                        exact_goals += 1
                        ok_exact &= exact
                        exact_done = True
        else:
            if spec.kind == "keep" and measured0 is not None:
                ref = start.labels if start.labels is not None else measured0
                m[f"{key}_judge_start_correct"] = float((measured0 == ref).mean())
            m[f"{key}_judge_confidence_end"] = float(last.confidence.mean())
            if guide_class is not None and head.column == ctx.oracle.class_column:
                if spec.kind == "keep":
                    want = keep_reference if keep_reference is not None else (
                        start.labels if start.labels is not None else measured0)  # fmt: skip
                else:
                    want = int(spec.value)  # type: ignore[arg-type]
                ok_guide &= guide_class == want
        if good is None:
            unverified.append(spec.text)
            m[f"success_{key}"] = None  # no oracle reads it: unverified, not a success
        else:
            m[f"success_{key}"] = float(good.mean())
            m[f"success_{key}_confident"] = _share(good, confident)
            ok_oracle &= good
            if not exact_done:
                ok_exact &= good
        m[f"predicted_success_{key}"] = float(good_pred.mean())
        ok_pred &= good_pred
        if head.kind == "regression" and good is not None:
            ok_guide &= good  # the measures are the same function in and out of the loop
    if learned_goals:
        # a learned oracle reads NaN outside its applicability domain: never a success
        m["unverifiable"] = float(outside.mean())
        if exact_goals:
            m["success_rate_exact"] = float(ok_exact.mean())
    m["unverified_goals"] = ", ".join(unverified)
    # With an unverified goal no sample can be certified as a whole.
    m["success_rate"] = None if unverified else float(ok_oracle.mean())
    m["success_rate_verified_goals"] = float(ok_oracle.mean())
    sure = None if unverified else _share(ok_oracle, confident)
    m["success_rate_confident"] = sure
    m["predicted_success_rate"] = float(ok_pred.mean())
    # heads − oracles over the same goals: none where a goal is unverified (the heads'
    # rate then covers goals the oracles' does not)
    m["success_gap"] = None if unverified else m["predicted_success_rate"] - float(ok_oracle.mean())
    # The same comparison where the start's class is not in doubt: on ambiguous starts the
    # certifier's reading of the start, which a kept class is graded against, is itself moot.
    heads_sure = _share(ok_pred, confident)
    m["predicted_success_rate_confident"] = heads_sure
    m["success_gap_confident"] = None if sure is None else heads_sure - sure
    m["guide_success_rate"] = float(ok_guide.mean()) if guided else None

    ref = ctx.reference_features
    assert ref is not None  # set by Context.__post_init__
    features: dict[str, np.ndarray] = {}  # the certifier's features of the starts and ends
    match_on = model.domain.match_on
    for when, x, report in (("start", first_images, first), ("end", last_images, last)):
        feats = ctx.grader.embed(x).cpu().numpy()
        features[when] = feats.astype(np.float32)
        # At a fixed sample size (oracles.FRECHET_N), so tasks of any n compare.
        m[f"realism_{when}"] = frechet_at_fixed_n(feats, ref, seed=cfg.seed)
        values = report.measures[match_on].to_numpy() if match_on else np.full(n, np.nan)
        idx = matched_reference(
            report.label, values, ctx.reference_label, ctx.reference_value
        )  # fmt: skip
        m[f"realism_matched_{when}"] = frechet_at_fixed_n(
            feats, ref[idx], seed=cfg.seed, paired=True
        )
        # Diversity: mean pairwise distance of the samples in the judge's features.
        m[f"diversity_{when}"] = float(torch.pdist(torch.as_tensor(feats)).mean()) if n > 1 else 0.0
    m["diversity_ratio"] = m["diversity_end"] / max(m["diversity_start"], 1e-9)
    m["realism_ratio"] = m["realism_end"] / max(m["realism_start"], 1e-9)
    m["realism_matched_ratio"] = m["realism_matched_end"] / max(m["realism_matched_start"], 1e-9)
    starts = manifold_scores(model, result.z[0], safeguards(cfg, ctx), start=result.z[0])
    for name, score in result.manifold.items():
        m[f"manifold_{name}_start"] = float(starts[name].mean())
        m[f"manifold_{name}_end"] = float(score.mean())
    for reason, count in Counter(result.stop_reason).items():
        m[f"stopped_{reason}"] = count
    m["mean_stop_step"] = float(result.stop_step.float().mean())
    # Samples steered again from their start after an attempt confirmed nothing (retry.py).
    assert result.attempts is not None
    m["retried"] = int((result.attempts > 1).sum())
    # Objective evaluations per sample (for gradient methods one forward and backward pass).
    m["model_calls"] = float(result.model_calls.float().mean())
    # Frames read by the in-loop oracles per sample (0 without a guide).
    m["oracle_calls"] = float(result.oracle_calls.float().mean())
    m["wall_s"] = float(result.wall_seconds)
    # NaN (e.g. no confident start) is not JSON; null is.
    metrics = {
        k: (None if v != v else round(v, 6)) if isinstance(v, float) else v for k, v in m.items()
    }
    per_sample = {
        "success": ok_oracle,
        "predicted_success": ok_pred,
        "guide_success": ok_guide,
        "model_calls": result.model_calls.numpy(),
        "oracle_calls": result.oracle_calls.numpy(),
        "attempts": result.attempts.numpy(),
        # (n, f) each: for realism scores over several experiments pooled (the report)
        "features_start": features["start"],
        "features_end": features["end"],
    }
    return metrics, per_sample


def _learned_goal(
    m: dict[str, Any], key: str, spec: GoalSpec, card: PropertyCard,
    first: OracleReport, last: OracleReport, good: np.ndarray,
) -> np.ndarray | None:  # fmt: skip
    """Metrics of a goal on a learned property; its verdicts by the exact measure the table
    came from, when the certifying oracle measures one (else ``None``).

    Every claimed gain stands next to the oracle's cross-validated error, and the share of
    samples the oracle could not vouch for (outside its applicability domain) is named.
    """
    measured1 = last.measures[card.name].to_numpy()
    m[f"{key}_oracle"] = card.describe("certifier")
    m[f"{key}_oracle_cv_mae"] = card.cv.get("certifier_mae")
    m[f"{key}_unverifiable"] = float(np.isnan(measured1).mean())
    m[f"{key}_inside_start"] = float(np.isfinite(first.measures[card.name].to_numpy()).mean())
    exact = card.column
    if exact == card.name or exact not in last.measures.columns:
        return None
    e0, e1 = first.measures[exact].to_numpy(), last.measures[exact].to_numpy()
    # the goal's own tolerance: the same question, asked of the exact measure
    verdict = goal_rule(spec, e0, e1, card.tolerance)[1]
    m[f"{key}_exact_measure"] = exact
    m[f"{key}_exact_change"] = float(np.nanmean(e1 - e0))
    m[f"{key}_exact_success"] = float(verdict.mean())
    m[f"{key}_verdicts_agree"] = float((verdict == good).mean())
    inside = np.isfinite(measured1)
    m[f"{key}_verdicts_agree_inside"] = _share(verdict == good, inside)
    m[f"{key}_oracle_abs_error_end"] = float(np.nanmean(np.abs(measured1 - e1)))
    return verdict


def goal_keys(specs: list[GoalSpec]) -> list[str]:
    """Metric-name-safe keys of the goals: the property, numbered when it repeats."""
    seen: Counter[str] = Counter()
    keys = []
    for spec in specs:
        seen[spec.prop] += 1
        keys.append(spec.prop if seen[spec.prop] == 1 else f"{spec.prop}_{seen[spec.prop]}")
    return keys


def _share(ok: np.ndarray, among: np.ndarray) -> float:
    """Share of ``ok`` among the samples ``among`` selects (NaN when it selects none)."""
    return float(ok[among].mean()) if among.any() else math.nan
