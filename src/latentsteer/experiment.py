"""One steering experiment, from its settings to oracle-verified results on disk.

An experiment is an entry under ``experiments:`` in ``params.yaml`` (or the flags of
``latentsteer steer``): where to start, which goals, which method, how many steps, which
safeguards. :func:`run_experiment` runs it and measures the outcome with the independent
oracles; :func:`write_results` writes the files both the DVC stage and the CLI produce:

* ``trajectory.npz`` — ``images`` float32 ``(F, n, *sample_shape)`` (the decoded samples;
  MNIST: 28×28 in [0, 1]), ``z`` ``(F, n, d)``,
  ``step`` ``(F,)`` (which optimiser step each frame is; every ``record_every``-th step plus
  the last), ``predicted_<head>`` per frame; per sample ``stop_step``, ``stop_reason``,
  ``model_calls``, and ``success`` / ``predicted_success`` (every goal, by the oracles / the
  heads); per frame ``success_by_frame`` and ``calls_by_frame`` (oracle success against
  model calls spent);
* ``grid.png`` — rows are samples, columns are steps;
* ``curves.png`` — predicted and measured value of each goal per step, mean ± sd;
* ``metrics.json`` — oracle success, measured change, predicted-vs-measured gap, realism,
  diversity, manifold scores, stop reasons, model calls and wall time.

Everything specific to the data comes from the model's domain (:mod:`latentsteer.domain`):
how starts are read, the oracles, the tolerances and how samples are drawn. Realism is the
Fréchet distance in the certifying judge's features to real test samples, twice: to the
whole reference set (``realism_*``), and to the real samples matched to each sample on the
judge's class and the domain's ``match_on`` measure (``realism_matched_*``; MNIST: the
thickness), which does not count "these are all thick 3s" as unrealism. Each is reported
for the start and the end.

Success is always judged by the certifying oracle (MNIST: Morpho-MNIST measures of the
decoded image and the certifier judge), goal by goal, with the domain's per-property
tolerance (``oracle_tol`` overrides it) for regression goals:

=================  =============================================================
``prop=max|min``    the measured value moved that way
``prop=+D|-D``      the measured change is within the tolerance of ``D``
``prop=V``          the measured value is within the tolerance of ``V``
``prop=keep``       the measured value moved by at most the tolerance
``class=K``         the judge reads ``K`` (MNIST: ``digit=K``)
``class=keep``      the judge reads the start's class (the true label for test samples)
=================  =============================================================

The same rules applied to the heads' own readout give the *predicted* success, so the two
can be compared.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from latentsteer.ascent import SteerResult, StopRule, ascend
from latentsteer.atomic import atomic_file, write_json
from latentsteer.baselines import data_space_ascent
from latentsteer.blackbox import Strategy, blackbox_search
from latentsteer.domain import Oracle, OracleReport, Start
from latentsteer.goalspec import GoalSpec, parse_goal
from latentsteer.guide import Guide, read_starts
from latentsteer.model import MultiHeadVAE
from latentsteer.objectives import Goal, Keep
from latentsteer.oracles import frechet_at_fixed_n, matched_reference
from latentsteer.plots import save_curves
from latentsteer.random_search import RandomSearch
from latentsteer.readout import readout as make_readout
from latentsteer.safeguards import (
    CycleConsistency,
    KNNDensity,
    PriorPenalty,
    Proximity,
    Safeguard,
    manifold_scores,
)
from latentsteer.tolerances import tolerance

CONFIDENT = 0.9  # a start both judges read alike with at least this probability is "confident"


@dataclass
class ExperimentConfig:
    """One experiment (mirrors an entry of ``params.yaml: experiments``)."""

    goals: list[str] = field(default_factory=lambda: ["thickness=+1.5", "digit=keep"])
    # latent: gradient ascent on codes; data_space: on pixels (the counter-example);
    # random_search, cmaes, bayesopt: gradient-free baselines on codes (blackbox.py).
    method: Literal["latent", "data_space", "random_search", "cmaes", "bayesopt"] = "latent"
    task: str | None = None  # experiments with the same task are compared in the report
    # The experiment this entry repeats on other starts (another seed): the report shows the
    # seeds' mean and worst next to it instead of a row of its own.
    replicate: str | None = None
    start: str = "random:256"  # random:N, test:A-B, or a path to images
    seed: int = 0  # seeds the prior draws
    steps: int = 300  # largest number of optimiser steps (samples stop earlier when confirmed)
    lr: float = 0.05  # step size (codes for latent, pixels for data_space)
    optimizer: Literal["adam", "sgd"] = "adam"
    readout: Literal["code", "cycle", "mixed"] = "mixed"  # how heads read a code (readout.py)
    penalty: float = 10.0  # weight of the penalty on broken constraints (keep goals)
    # Band of target/keep goals on the heads, in the property's units; null = half the
    # oracle's tolerance of that property (MNIST thickness: 0.25 px).
    tol: float | None = None
    confidence: float = 0.9  # probability class goals ask of the head
    prior: float = 0.05  # prior penalty weight (0 = off)
    radius: float | None = None  # trust region ||z|| <= radius (null = off)
    knn: float = 0.0  # kNN-density penalty weight (0 = off)
    knn_k: int = 10  # neighbours for the kNN density
    cycle: float = 0.0  # decode-encode consistency penalty weight (0 = off)
    proximity: float = 0.0  # penalty weight on pixel change from the start (0 = off)
    stop_when_satisfied: bool = True  # freeze a sample once all its goals hold
    grad_tol: float | None = 1e-5  # freeze a sample when its gradient norm falls below
    patience: int | None = None  # freeze a sample after this many steps without gain (unguided)
    # Closed loop (guide.py): every check_every steps the in-loop oracles (measures and the
    # guide judge) read the moving samples; a sample stops once they confirm its goals, an
    # open-ended one returns to its best confirmed frame. Results are certified by the
    # certifier, which the loop never sees. Off: the heads alone steer and stop.
    guide: bool = True  # closed loop: in-loop oracles check, stop, re-aim (not data_space)
    check_every: int = 10  # steps between in-loop checks
    guide_confidence: float = 0.5  # least probability the guide judge gives a class goal (K)
    guide_patience: int = 5  # checks without a better frame before a max/min sample stops
    guide_weight: float = 0.0  # penalty on the guide judge's shortfall on class goals (0 = off)
    trust: float = 2.0  # heads trusted while predicted and measured change differ < trust·tol
    # Per-property tolerance of the oracle success rules, in the property's units; unset
    # properties take the domain's tolerances (MNIST: thickness 0.5 px, slant 0.05 rad...).
    oracle_tol: dict[str, float] = field(default_factory=dict)  # e.g. thickness=0.3 (px)
    record_every: int = 10  # keep every N-th step (round) in trajectory.npz (plus the last)
    budget: int = 300  # gradient-free methods: model calls per sample, the start's included
    population: int = 16  # random search and CMA-ES: candidates per round; bayesopt: q
    sigma: float = 0.5  # random search: proposal spread; CMA-ES: initial step (prior sd)
    box: float = 1.5  # bayesopt: half-width of the box around each start (prior sd)
    init: int = 16  # bayesopt: codes evaluated before the first GP, the start's included

    def __post_init__(self) -> None:
        if not self.goals:
            raise ValueError("goals must list at least one goal")
        self.specs = [parse_goal(g) for g in self.goals]
        for key in ("steps", "knn_k", "record_every", "population", "check_every",
                    "guide_patience"):  # fmt: skip
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer; got {getattr(self, key)!r}")
        if self.tol is not None and not self.tol > 0:
            raise ValueError(f"tol must be positive or null; got {self.tol!r}")
        for key in ("lr", "sigma", "box", "trust"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be positive; got {getattr(self, key)!r}")
        for key in ("penalty", "prior", "knn", "cycle", "proximity", "guide_weight"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"{key} must be >= 0; got {getattr(self, key)!r}")
        for key in ("confidence", "guide_confidence"):
            if not 0 < getattr(self, key) < 1:
                raise ValueError(f"{key} must be between 0 and 1; got {getattr(self, key)!r}")
        if not isinstance(self.oracle_tol, dict):
            raise ValueError(
                f"oracle_tol must map properties to tolerances, e.g. {{thickness: 0.5}}; "
                f"got {self.oracle_tol!r}"
            )
        for prop in self.oracle_tol:
            tolerance(prop, self.oracle_tol)  # a positive number for a known property
        if self.radius is not None and not self.radius > 0:
            raise ValueError(f"radius must be positive or null; got {self.radius!r}")
        if self.budget < 2 or self.init < 2:
            raise ValueError(f"budget and init must be at least 2; got {self.budget}, {self.init}")
        if self.method == "cmaes" and self.population < 2:
            raise ValueError("cmaes needs population >= 2")
        if self.method == "data_space" and self.start.startswith("random:"):
            raise ValueError("data_space ascent moves pixels: start it from images (test:A-B)")

    def as_params(self) -> dict:
        """The settings as a plain dict (for MLflow and metrics)."""
        return {k: v for k, v in asdict(self).items() if k != "specs"}


@dataclass
class Context:
    """What every experiment reads besides its own settings.

    Attributes:
        model: the trained VAE (its domain reads starts and draws samples).
        oracle: the in-loop oracle the closed loop reads (:mod:`latentsteer.guide`); MNIST:
            the measures and the guide judge.
        reference: ``(m, *sample_shape)`` real test samples for the realism score.
        reference_label: ``(m,)`` their classes (the oracle's class column).
        reference_value: ``(m,)`` their ``match_on`` measure (the domain's), or NaN.
        train_codes: ``(k, d)`` encoded training samples, for the kNN safeguard and scores.
        data_root: where the domain reads test starts from.
        workers: processes for the oracles' measures.
        reference_features: ``(m, f)`` the certifier's features of ``reference``;
            computed here when not given.
        certifier: an oracle whose judge the loop never sees: it certifies class goals and
            gives the realism features. ``None`` uses ``oracle`` (then a guided run's class
            goals are graded by a judge that steered them, and metrics say so).
    """

    model: MultiHeadVAE
    oracle: Oracle
    reference: torch.Tensor
    reference_label: np.ndarray
    reference_value: np.ndarray
    train_codes: torch.Tensor
    data_root: str | Path | None = None
    workers: int | None = None
    reference_features: np.ndarray | None = field(default=None, repr=False)
    certifier: Oracle | None = None

    def __post_init__(self) -> None:
        # The certifier's features of the reference, computed once for every realism score
        # unless the `context` stage already did (see the domain's steering context).
        if self.reference_features is None:
            self.reference_features = self.grader.embed(self.reference).cpu().numpy()

    @property
    def grader(self) -> Oracle:
        """The oracle that certifies results: the certifier, else the in-loop oracle."""
        return self.certifier if self.certifier is not None else self.oracle


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


def safeguards(cfg: ExperimentConfig, ctx: Context) -> list[Safeguard]:
    """All four safeguards with the experiment's weights (weight 0 = measured, not applied)."""
    return [
        PriorPenalty(cfg.prior, cfg.radius),
        KNNDensity(ctx.train_codes, cfg.knn_k, cfg.knn),
        CycleConsistency(cfg.cycle),
        Proximity(cfg.proximity),
    ]


def run_experiment(cfg: ExperimentConfig, ctx: Context, progress: bool = False) -> Outcome:
    """Run one experiment and measure its outcome with the oracles.

    Raises:
        ValueError: a goal the model cannot take, a bad start spec, and the like.
    """
    model = ctx.model
    start = model.domain.parse_start(cfg.start, model, seed=cfg.seed, data_root=ctx.data_root)
    goals: list = [
        s.goal(model, tol=heads_band(cfg, model, s.prop), confidence=cfg.confidence)
        for s in cfg.specs
    ]
    guards = safeguards(cfg, ctx)
    keep_reference, guide = None, None
    if cfg.guide and cfg.method != "data_space":
        guide, goals = closed_loop(cfg, ctx, start, goals)
        keep_reference = guide.start.reference
    if cfg.method == "latent":
        stop = StopRule(
            cfg.stop_when_satisfied, cfg.grad_tol, cfg.patience, guide_patience=cfg.guide_patience
        )
        result = ascend(
            model, start.z.to(model.device), goals, steps=cfg.steps, lr=cfg.lr,
            optimizer=cfg.optimizer, safeguards=[g for g in guards if g.weight or _projects(g)],
            stop=stop, penalty_weight=cfg.penalty, readout=cfg.readout, seed=cfg.seed,
            guide=guide, check_every=cfg.check_every,
        )  # fmt: skip
    elif cfg.method == "data_space":
        assert start.images is not None
        result = data_space_ascent(
            model, start.images.to(model.device), goals, steps=cfg.steps, lr=cfg.lr,
            penalty_weight=cfg.penalty, readout=cfg.readout,
        )  # fmt: skip
    else:
        result = blackbox_search(
            model, start.z.to(model.device), goals, search_strategy(cfg, start.z),
            budget=cfg.budget, safeguards=[g for g in guards if g.weight],
            penalty_weight=cfg.penalty, readout=cfg.readout,
            stop_when_satisfied=cfg.stop_when_satisfied, guide=guide,
            check_every=cfg.check_every, guide_patience=cfg.guide_patience,
        )  # fmt: skip
    # Every safeguard's score at the end, anchored at the start, whether it was on or not.
    result.manifold = manifold_scores(model, result.z[-1], guards, start=result.z[0])
    frames = recorded_steps(len(result.z) - 1, cfg.record_every)
    images = result.images_at(frames.tolist())  # (F, n, *sample_shape)
    flat = images.reshape(-1, *images.shape[2:])
    one = ctx.grader.read(flat, workers=ctx.workers)  # one pool for every frame
    n = images.shape[1]
    reports = [one.rows(i * n, (i + 1) * n) for i in range(len(frames))]
    guide_first, guide_digit = None, None  # what the in-loop judge read (none: no judge)
    if ctx.oracle.class_column is not None:
        guide_first = ctx.oracle.probabilities(images[0]).cpu().numpy()  # (n, k)
        guide_digit = ctx.oracle.probabilities(images[-1]).argmax(1).cpu().numpy()  # (n,)
    metrics, per_sample = assess(
        cfg, ctx, start, result, images[0], images[-1], reports[0], reports[-1],
        keep_reference=keep_reference, guide_digit=guide_digit, guide_first=guide_first,
    )  # fmt: skip
    curve = success_curve(cfg, model, start, result, frames, reports, keep_reference)
    return Outcome(cfg, start, result, frames, images, reports, metrics, per_sample, curve)


def closed_loop(
    cfg: ExperimentConfig, ctx: Context, start: Start, goals: list[Goal]
) -> tuple[Guide, list]:
    """The guide of a latent experiment, and its goals bound for it.

    ``keep`` goals on the judge's class keep what the guide judge reads in the decoded start
    (the true label for test samples), not the head's reading, which is wrong for about one
    confident MNIST prior draw in eight. Band goals are bound here so the guide can move
    their centres.
    """
    model = ctx.model
    z0 = start.z.to(model.device)
    reading = read_starts(model, ctx.oracle, z0, start.labels)
    ref = torch.as_tensor(reading.reference, device=z0.device)

    def judged_class(head: str) -> bool:
        spec = model.head_spec(head)
        return spec.kind == "class" and spec.column == ctx.oracle.class_column

    declared = [
        Keep(g.head, g.tol, g.confidence, g.weight, g.constraint, reference=ref)
        if isinstance(g, Keep) and judged_class(g.head) else g
        for g in goals
    ]  # fmt: skip
    read_heads = make_readout(model, cfg.readout)
    bound = [g.bind(model, z0, read_heads) for g in declared]
    guide = Guide(
        model, ctx.oracle, cfg.specs, bound, read_heads, reading,
        confidence=cfg.guide_confidence,
        trust=cfg.trust, tolerances=cfg.oracle_tol, weight=cfg.guide_weight,
        keep_confidence=cfg.confidence,
    )  # fmt: skip
    return guide, bound


def heads_band(cfg: ExperimentConfig, model: MultiHeadVAE, prop: str) -> float:
    """How near its target the heads must read a band goal on ``prop``: ``cfg.tol``, else
    half the oracle's tolerance, so the heads aim well inside what the oracle accepts."""
    if cfg.tol is not None:
        return cfg.tol
    column = model.head_spec(prop).column
    return 0.5 * goal_tolerance(column, cfg.oracle_tol, model.domain.tolerances)


def search_strategy(cfg: ExperimentConfig, start: torch.Tensor) -> Strategy:
    """The gradient-free strategy of a baseline experiment, built for ``start (n, d)``.

    Raises:
        ImportError: with the install hint, when the method's package is missing.
    """
    try:
        if cfg.method == "random_search":
            return RandomSearch(start, cfg.sigma, cfg.population, cfg.seed)
        if cfg.method == "cmaes":
            from latentsteer.cmaes import CMAES

            return CMAES(start, cfg.sigma, cfg.population, cfg.seed)
        if cfg.method == "bayesopt":
            from latentsteer.bayesopt import BayesOpt

            return BayesOpt(start, cfg.box, cfg.init, cfg.population, cfg.seed)
    except ModuleNotFoundError as err:
        raise ImportError(
            f"method {cfg.method} needs the {err.name!r} package: "
            "pip install 'latentsteer[baselines]'"
        ) from None
    raise ValueError(f"unknown method {cfg.method!r}")


def _projects(g: Safeguard) -> bool:
    return isinstance(g, PriorPenalty) and g.radius is not None


def recorded_steps(last: int, every: int) -> np.ndarray:
    """Steps kept in the trajectory: ``0, every, 2·every, ...`` and always ``last``."""
    return np.unique(np.r_[np.arange(0, last + 1, every), last])


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
        good_pred = _success(spec, p0.numpy(), p1.numpy(), tol)
        if measured0 is None:
            return None, good_pred
        return _success(spec, measured0, measured1, tol), good_pred
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


def goal_tolerance(
    column: str,
    overrides: dict[str, float] | None = None,
    table: Mapping[str, float] | None = None,
) -> float:
    """The success tolerance of a regression goal on label ``column``, in its units.

    Args:
        overrides: the experiment's ``oracle_tol``.
        table: the domain's tolerances.

    A column no oracle measures (a head on the user's own label) has no table entry; its
    goals are unverified anyway, and the heads' success uses an override or 0.5.
    """
    if column in (table or {}) or column in (overrides or {}):
        return tolerance(column, overrides, table)
    return 0.5


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


def _success(spec: GoalSpec, before: np.ndarray, after: np.ndarray, tol: float) -> np.ndarray:
    """Per-sample success of a regression goal, from values at the start and the end.

    ``+D`` asks for a change of D: within ``tol`` of it, in either direction (overshooting
    is not what was asked). ``VALUE`` asks for the value within ``tol``; ``keep`` for a
    change of at most ``tol``; ``max``/``min`` for any change the right way.
    """
    change = after - before
    if spec.kind == "max":
        return change > 0
    if spec.kind == "min":
        return change < 0
    if spec.kind == "keep":
        return np.abs(change) <= tol
    if spec.kind == "change":
        return np.abs(change - spec.value) <= tol  # type: ignore[operator]
    return np.abs(after - spec.value) <= tol  # type: ignore[operator]


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
    guide_digit: np.ndarray | None = None,
    guide_first: np.ndarray | None = None,
) -> tuple[dict[str, float | int | str | None], dict[str, np.ndarray]]:
    """Metrics of a finished run, every success figure from the certifying oracles.

    Args:
        first, last: the certifying oracles' readings (measures and the certifier).
        keep_reference: see :func:`goal_success`.
        guide_first: ``(n, k)`` the guide judge's probabilities for the start samples: a
            start is *confident* when both judges read it as the same class with at least
            ``CONFIDENT`` (with one judge, when ``None``).
        guide_digit: ``(n,)`` the guide judge's reading of the final samples, for
            ``guide_success_rate`` (what the in-loop oracles believed).

    Returns:
        The metrics, and per sample ``(n,)``: ``success`` (every verified goal, by the
        certifying oracles), ``predicted_success`` (by the heads), ``guide_success`` (by the
        in-loop oracles) and ``model_calls``.
    """
    model = ctx.model
    n = len(result.stop_step)
    guided = cfg.method != "data_space" and cfg.guide
    m: dict[str, float | int | str | None] = {"n": n, "method": cfg.method, "start": cfg.start}
    # Which oracles steered or stopped the samples, and which graded them: never the same
    # learned model in both roles.
    m["in_loop_oracles"] = ctx.oracle.describe if guided else "none"
    m["certified_by"] = ctx.grader.describe
    # Confident: no oracle doubts which class the start is. Where two independent judges
    # read a drawing differently, "keep the digit" has no single answer to check against.
    confident = first.confidence >= CONFIDENT
    if guide_first is not None:
        confident &= (guide_first.max(1) >= CONFIDENT) & (guide_first.argmax(1) == first.label)
    m["ambiguous_starts"] = int((~confident).sum())
    ok_oracle = np.ones(n, dtype=bool)
    ok_pred = np.ones(n, dtype=bool)
    ok_guide = np.ones(n, dtype=bool)
    unverified = []
    for spec, key in zip(cfg.specs, goal_keys(cfg.specs), strict=True):
        head = model.head_spec(spec.prop)
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
        else:
            if spec.kind == "keep" and measured0 is not None:
                ref = start.labels if start.labels is not None else measured0
                m[f"{key}_judge_start_correct"] = float((measured0 == ref).mean())
            m[f"{key}_judge_confidence_end"] = float(last.confidence.mean())
            if guide_digit is not None and head.column == ctx.oracle.class_column:
                if spec.kind == "keep":
                    want = keep_reference if keep_reference is not None else (
                        start.labels if start.labels is not None else measured0)  # fmt: skip
                else:
                    want = int(spec.value)  # type: ignore[arg-type]
                ok_guide &= guide_digit == want
        if good is None:
            unverified.append(spec.text)
            m[f"success_{key}"] = None  # no oracle reads it: unverified, not a success
        else:
            m[f"success_{key}"] = float(good.mean())
            m[f"success_{key}_confident"] = _share(good, confident)
            ok_oracle &= good
        m[f"predicted_success_{key}"] = float(good_pred.mean())
        ok_pred &= good_pred
        if head.kind == "regression" and good is not None:
            ok_guide &= good  # the measures are the same function in and out of the loop
    m["unverified_goals"] = ", ".join(unverified)
    # With an unverified goal no sample can be certified as a whole.
    m["success_rate"] = None if unverified else float(ok_oracle.mean())
    m["success_rate_verified_goals"] = float(ok_oracle.mean())
    m["success_rate_confident"] = None if unverified else _share(ok_oracle, confident)
    m["predicted_success_rate"] = float(ok_pred.mean())
    m["success_gap"] = m["predicted_success_rate"] - float(ok_oracle.mean())
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
    # Objective evaluations per sample (for gradient methods one forward and backward pass).
    m["model_calls_per_sample"] = float(result.model_calls.float().mean())
    # Frames read by the in-loop oracles per sample (0 without a guide).
    m["oracle_calls_per_sample"] = float(result.oracle_calls.float().mean())
    m["wall_seconds"] = float(result.wall_seconds)
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
        # (n, f) each: for realism scores over several experiments pooled (the report)
        "features_start": features["start"],
        "features_end": features["end"],
    }
    return metrics, per_sample


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
    return line + f"; realism x{m['realism_ratio']:.2f}, {m['wall_seconds']:.1f} s"
