"""Running one experiment, for every domain (:func:`run_experiment`).

On a :class:`~latentsteer.context.Context` the engine moves codes along trajectories: the
domain reads the start, the goals bind to the model, the ascent (or a search) moves the
codes under the closed loop, and the recorded frames are read by the certifying oracle and
graded (:mod:`latentsteer.grading`); the result is each sample's last confirmed frame.

A domain whose context proposes samples of its own (a :class:`ProposingContext`: molecules)
runs the same experiment with the engine's other parts: its proposers in rounds
(:mod:`latentsteer.rounds`) under a budgeted oracle (:mod:`latentsteer.budget`), the shared
rules and verdicts (:mod:`latentsteer.verdicts`), and the best candidate the oracle measured
as each start's result, certified afresh.
"""

from __future__ import annotations

from typing import Protocol, overload

import numpy as np
import torch

from latentsteer.ascent import SteerResult, StopRule, ascend
from latentsteer.baselines import data_space_ascent
from latentsteer.blackbox import Strategy, blackbox_search
from latentsteer.context import Context, safeguards
from latentsteer.domain import Oracle, OracleReport, Start
from latentsteer.experiment_config import ExperimentConfig, heads_band
from latentsteer.grading import assess, success_curve
from latentsteer.guide import Guide, measured_columns, read_starts
from latentsteer.methods import ENGINE_METHODS
from latentsteer.objectives import Goal, Keep
from latentsteer.outcome import SteerOutcome
from latentsteer.random_search import RandomSearch
from latentsteer.readout import readout as make_readout
from latentsteer.results import Outcome
from latentsteer.retry import ascend_with_retries
from latentsteer.safeguards import (
    PriorPenalty,
    Safeguard,
    manifold_scores,
)


class ProposingContext(Protocol):
    """A domain's context that steers by proposing samples of its own (molecules:
    :class:`~latentsteer.domains.molecules.context.MoleculeContext`)."""

    def steer(self, cfg: ExperimentConfig) -> SteerOutcome:
        """Run ``cfg`` from the start it names; the oracles certify every result."""
        ...


def steer_start(
    cfg: ExperimentConfig, ctx: Context, start: Start
) -> tuple[SteerResult, list[Safeguard], np.ndarray | None, Guide | None]:
    """Steer ``start`` as ``cfg`` says: the ascent (closed loop unless switched off) or a
    baseline, before any grading. What :func:`run_experiment` and the steering benchmark
    time alike.

    Returns:
        The result, the safeguards built for it, the class each ``keep`` goal keeps
        (``None`` without a closed loop) and the guide (``None`` without one).
    """
    model = ctx.model
    goals: list = []
    for spec in cfg.specs:
        spec.goal(model)  # first, one line naming an unknown property or an unfit goal
        band = heads_band(cfg, model, spec.prop)
        goals.append(spec.goal(model, tol=band, confidence=cfg.confidence))
    guards = safeguards(cfg, ctx)
    keep_reference, guide = None, None
    if cfg.guide and cfg.method != "data_space":
        guide, goals = closed_loop(cfg, ctx, start, goals)
        keep_reference = guide.start.reference
    if cfg.method == "latent":
        stop = StopRule(
            cfg.stop_when_satisfied, cfg.grad_tol, cfg.patience, guide_patience=cfg.guide_patience
        )
        settings = dict(
            steps=cfg.steps, lr=cfg.lr, optimizer=cfg.optimizer,
            safeguards=[g for g in guards if g.weight or _projects(g)], stop=stop,
            penalty_weight=cfg.penalty, readout=cfg.readout, seed=cfg.seed,
            check_every=cfg.check_every, oracle_budget=cfg.budget,
        )  # fmt: skip
        z0 = start.z.to(model.device)
        if guide is None:
            result = ascend(model, z0, goals, **settings)  # type: ignore[arg-type]
        else:  # the samples it could not confirm get another attempt
            result = ascend_with_retries(model, z0, goals, guide=guide, retries=cfg.retries,
                                         **settings)  # fmt: skip
    elif cfg.method == "data_space":
        assert start.images is not None
        result = data_space_ascent(
            model, start.images.to(model.device), goals, steps=cfg.steps, lr=cfg.lr,
            penalty_weight=cfg.penalty, readout=cfg.readout,
        )  # fmt: skip
    else:
        result = blackbox_search(
            model, start.z.to(model.device), goals, search_strategy(cfg, start.z),
            budget=cfg.model_budget, safeguards=[g for g in guards if g.weight],
            penalty_weight=cfg.penalty, readout=cfg.readout,
            stop_when_satisfied=cfg.stop_when_satisfied, guide=guide,
            check_every=cfg.check_every, guide_patience=cfg.guide_patience,
            oracle_budget=cfg.budget,
        )  # fmt: skip
    return result, guards, keep_reference, guide


@overload
def run_experiment(cfg: ExperimentConfig, ctx: Context) -> Outcome: ...
@overload
def run_experiment(cfg: ExperimentConfig, ctx: ProposingContext) -> SteerOutcome: ...
def run_experiment(cfg: ExperimentConfig, ctx: Context | ProposingContext) -> SteerOutcome:
    """Run one experiment and measure its outcome with the certifying oracles (see the
    module docstring): an :class:`Outcome` on a :class:`Context`, else the proposing
    context's own outcome.

    Raises:
        ValueError: a goal the model cannot take, a bad start spec, and the like.
    """
    if not isinstance(ctx, Context):
        return ctx.steer(cfg)
    return run_trajectories(cfg, ctx)


def run_trajectories(cfg: ExperimentConfig, ctx: Context) -> Outcome:
    """The engine's trajectories: steer the codes of ``cfg.start`` (:func:`steer_start`),
    read the recorded frames with the certifying oracles and grade them.

    Raises:
        ValueError: a method the trajectories do not serve (one line).
    """
    if cfg.method not in ENGINE_METHODS:
        raise ValueError(f"method {cfg.method}: not a method of {ctx.model.domain.name} "
                         f"models; theirs: {', '.join(ctx.model.domain.methods)}")  # fmt: skip
    model = ctx.model
    start = model.domain.parse_start(cfg.start, model, seed=cfg.seed, data_root=ctx.data_root)
    result, guards, keep_reference, guide = steer_start(cfg, ctx, start)
    # Every safeguard's score at the end, anchored at the start, whether it was on or not.
    result.manifold = manifold_scores(model, result.z[-1], guards, start=result.z[0])
    frames = recorded_steps(len(result.z) - 1, cfg.record_every)
    images = result.images_at(frames.tolist())  # (F, n, *sample_shape)
    reports = read_frames(ctx.grader, images, result.z[frames.tolist()], ctx.workers)
    guide_first, guide_class = None, None  # what the in-loop judge read (none: no judge)
    if ctx.oracle.class_column is not None:
        guide_first = ctx.oracle.probabilities(images[0]).cpu().numpy()  # (n, k)
        guide_class = ctx.oracle.probabilities(images[-1]).argmax(1).cpu().numpy()  # (n,)
    metrics, per_sample = assess(
        cfg, ctx, start, result, images[0], images[-1], reports[0], reports[-1],
        keep_reference=keep_reference, guide_class=guide_class, guide_first=guide_first,
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
    reading = read_starts(
        model, ctx.oracle, z0, start.labels, measured_columns(model, ctx.oracle, cfg.specs)
    )
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
        keep_confidence=cfg.confidence, keep_weight=cfg.keep_weight,
    )  # fmt: skip
    return guide, bound


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


def read_frames(
    oracle: Oracle, images: torch.Tensor, z: torch.Tensor, workers: int | None
) -> list[OracleReport]:
    """The oracle's reading of every recorded frame, one report per frame.

    A sample that has stopped keeps its code, so most late frames repeat an earlier one:
    only frames whose code moved since the previous recorded frame are read (in one call,
    one pool for all), and a repeat gets its sample's last reading.

    Args:
        oracle: the certifying oracle.
        images: ``(F, n, *sample_shape)`` the decoded frames.
        z: ``(F, n, d)`` their codes.
        workers: processes for the measures.
    """
    f, n = images.shape[:2]
    moved = torch.ones(f, n, dtype=torch.bool)
    moved[1:] = (z[1:] != z[:-1]).any(-1).cpu()
    flat_moved = moved.flatten().numpy()
    one = oracle.read(images.reshape(f * n, *images.shape[2:])[flat_moved], workers=workers)
    # For each (frame, sample), the position in ``one`` of its latest reading.
    position = np.cumsum(flat_moved) - 1  # (F·n,): index among the frames read
    latest = np.where(flat_moved, np.arange(f * n), -1).reshape(f, n)
    latest = np.maximum.accumulate(latest, axis=0)  # the last moved frame, per sample
    source = position[latest]  # (F, n)
    return [one.take(source[i]) for i in range(f)]


def recorded_steps(last: int, every: int) -> np.ndarray:
    """Steps kept in the trajectory: ``0, every, 2·every, ...`` and always ``last``."""
    return np.unique(np.r_[np.arange(0, last + 1, every), last])
