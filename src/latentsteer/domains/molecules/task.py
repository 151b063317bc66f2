"""What a molecule steering request asks, and the rules that say whether a result got it.

A task is goals on RDKit properties (the goal syntax of :mod:`latentsteer.goalspec`: ``max``,
``min``, ``keep``, a target ``VALUE`` or a change ``+D``/``-D``), optional bounds a result
must lie in, and a Tanimoto similarity threshold δ to its start. The same rules grade a
candidate by RDKit's measures (the oracle) and by the heads' predictions (to compare them):

=================  ================================================================
``prop=max|min``    the value moved that way (any amount; JT-VAE's convention)
``prop=V``          within the property's tolerance of ``V``
``prop=+D|-D``      the change is within the tolerance of ``D``
``prop=keep``       the value moved by at most the tolerance
bound ``[lo, hi]``  ``lo <= value <= hi`` (either side may be open)
similarity          Tanimoto(start, result) ≥ δ, and the result is another molecule
=================  ================================================================

Tolerances are the domain's, per property, in its units (``TOLERANCE`` of the domain).

Among acceptable candidates (similar enough, every ``keep`` held, better than the start) a
method returns the one that meets most rules, then the highest :func:`score`: the weighted
sum of each goal's progress in units of that property's spread over the training molecules
(so QED and logP weigh alike). With none acceptable the result is the start itself, an
improvement of 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from latentsteer.domains.molecules.methods import METHODS
from latentsteer.domains.molecules.properties import COLUMNS
from latentsteer.goalspec import GoalSpec, parse_goal


@dataclass
class MoleculeTask:
    """One molecule steering request (a ``molecules.experiments`` entry, or CLI flags).

    Attributes:
        goals: goal strings on RDKit properties, e.g. ``["plogp=max"]``.
        similarity: δ, the least Tanimoto similarity of a result to its start.
        bounds: property → ``[lo, hi]`` a result must lie in (``None``: open side).
        budget: oracle calls (distinct molecules RDKit measures) per start and method.
        method: ``ascent`` (default: the model's heads propose, RDKit checks, see
            :mod:`.proposals`), a baseline (``random``, ``cmaes``, ``bayesopt``, ``ga``,
            ``dataset``) or
            ``unguarded`` (plain ascent, last decoded molecule, no checks: the
            counter-example).
        seed: seeds every random choice.
        rounds: proposal rounds of ``ascent``: each later round proposes again from every
            start's best acceptable molecule so far (as RDKit measured it), with what is
            left of the budget.
        steps, replicas, lr, token_samples, temperature, invert_steps, noise, edits: how ``ascent``
            proposes (:func:`~.proposals.propose`); the defaults are the measured ones.
        neighbours: ``ascent`` also offers the heads, in its first round, this many
            training molecules most similar to each start (within δ; :mod:`.neighbours`),
            when the training molecules are at hand; 0 = off.
        sigma, population: proposal spread and size of ``random`` and ``cmaes``
            (``population``: also the codes ``bayesopt`` proposes per round).
        box, init: ``bayesopt``'s box around each starting code (half-width per dimension,
            in code units) and the codes it measures before its first GP.
    """

    goals: list[str]
    similarity: float = 0.4
    bounds: dict[str, list[float | None]] = field(default_factory=dict)
    budget: int = 100
    method: str = "ascent"
    seed: int = 0
    rounds: int = 2
    steps: int = 40
    replicas: int = 8
    lr: float = 0.02
    token_samples: int = 3
    temperature: float = 1.0
    invert_steps: int = 200
    noise: float = 0.05
    edits: int = 64
    neighbours: int = 64
    sigma: float = 0.3
    population: int = 10
    # ±0.6 per dimension spreads codes about as far as random search's sigma (a uniform
    # box's sd is 0.6/√3 = 0.35), so the two baselines differ in how they choose, not where.
    box: float = 0.6
    init: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.goals, str) or not self.goals:
            raise ValueError("goals must be a non-empty list of goal strings")
        self.specs = [parse_goal(g) for g in self.goals]
        for spec in self.specs:
            _check_property(spec.prop, f"goal {spec.text!r}")
        if not any(s.kind != "keep" for s in self.specs):
            raise ValueError("at least one goal must ask for a change (max, min, a value or +D)")
        if isinstance(self.similarity, bool) or not isinstance(self.similarity, int | float) \
                or not 0.0 <= self.similarity <= 1.0:  # fmt: skip
            raise ValueError(f"similarity must be a number in [0, 1]; got {self.similarity!r}")
        if not isinstance(self.bounds, Mapping):
            raise ValueError(f"bounds must map properties to [lo, hi]; got {self.bounds!r}")
        for prop, pair in self.bounds.items():
            _check_property(prop, "bounds")
            ok = (
                isinstance(pair, list | tuple)
                and len(pair) == 2
                and all(
                    v is None or (isinstance(v, int | float) and math.isfinite(v)) for v in pair
                )
            )
            if not ok or (None not in pair and pair[0] > pair[1]):
                raise ValueError(f"bounds.{prop} must be [lo, hi] with lo <= hi (null: open); "
                                 f"got {pair!r}")  # fmt: skip
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; accepted: {', '.join(METHODS)}")
        for key in (
            "budget",
            "rounds",
            "edits",
            "neighbours",
            "steps",
            "replicas",
            "token_samples",
            "invert_steps",
            "population",
            "init",
        ):
            value = getattr(self, key)
            least = 0 if key in ("token_samples", "invert_steps", "edits", "neighbours") else 1
            least = 2 if key == "init" else least  # a GP needs two points to fit
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{key} must be an integer >= {least}; got {value!r}")
        for key in ("lr", "temperature", "sigma", "box"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{key} must be a positive number; got {value!r}")
        if isinstance(self.noise, bool) or not isinstance(self.noise, int | float) \
                or self.noise < 0:  # fmt: skip
            raise ValueError(f"noise must be a number >= 0; got {self.noise!r}")

    @property
    def properties(self) -> list[str]:
        """Every property a rule reads, goals first, without repeats."""
        return list(dict.fromkeys([s.prop for s in self.specs] + list(self.bounds)))


def _check_property(prop: str, where: str) -> None:
    if prop not in COLUMNS:
        raise ValueError(f"{where}: unknown property {prop!r}; accepted: {', '.join(COLUMNS)}")


@dataclass
class Verdicts:
    """How candidates fare against one start, by one set of values (measured or predicted).

    Attributes:
        score: ``(m,)`` weighted progress over the start (see the module docstring).
        goals: ``(m, g)`` each goal's rule, goal by goal.
        bounds: ``(m,)`` every bound held.
        similar: ``(m,)`` similarity ≥ δ and another molecule than the start.
        acceptable: ``(m,)`` similar, every ``keep`` held and a score above 0.
        success: ``(m,)`` every rule held.
    """

    score: np.ndarray
    goals: np.ndarray
    bounds: np.ndarray
    similar: np.ndarray
    acceptable: np.ndarray
    success: np.ndarray

    def best(self, agree: np.ndarray | None = None) -> int | None:
        """The candidate a method returns: acceptable, most rules met, then (given ``agree
        (m,)``, where the heads' own verdict is success) one the heads also call a success,
        then highest score."""
        idx = np.flatnonzero(self.acceptable)
        if len(idx) == 0:
            return None
        met = self.goals[idx].sum(1) + self.bounds[idx]
        sure = np.zeros(len(idx)) if agree is None else np.asarray(agree, dtype=float)[idx]
        return int(idx[np.lexsort((-self.score[idx], -sure, -met))[0]])


def judge(
    task: MoleculeTask,
    values: pd.DataFrame,
    start: Mapping[str, float],
    similarity: np.ndarray,
    same: np.ndarray,
    spread: Mapping[str, float],
    tolerance: Mapping[str, float],
) -> Verdicts:
    """Grade ``m`` candidates of one start.

    Args:
        values: ``m`` rows with a column per property of ``task.properties`` (NaN: not a
            molecule, fails every rule).
        start: the start's value of each of those properties, by the same reader.
        similarity: ``(m,)`` Tanimoto similarity of each candidate to the start.
        same: ``(m,)`` the candidate is the start molecule itself.
        spread: property → its standard deviation over the training molecules.
        tolerance: property → what counts as "got it", in its units.
    """
    m = len(values)
    score = np.zeros(m)
    rules = np.ones((m, len(task.specs)), dtype=bool)
    keep = np.ones(m, dtype=bool)
    for j, spec in enumerate(task.specs):
        v = values[spec.prop].to_numpy(dtype=float)
        v0, tol, sd = float(start[spec.prop]), tolerance[spec.prop], spread[spec.prop]
        progress, rules[:, j] = _rule(spec, v, v0, tol)
        if spec.kind == "keep":
            keep &= rules[:, j]
        else:
            score += spec.weight * progress / sd
    inside = np.ones(m, dtype=bool)
    for prop, (lo, hi) in task.bounds.items():
        v = values[prop].to_numpy(dtype=float)
        inside &= (
            np.isfinite(v)
            & (v >= (-np.inf if lo is None else lo))
            & (v <= (np.inf if hi is None else hi))
        )
    score = np.where(np.isfinite(score), score, -np.inf)
    similar = (similarity >= task.similarity) & ~same
    return Verdicts(
        score, rules, inside, similar, similar & keep & (score > 0),
        similar & rules.all(1) & inside,
    )  # fmt: skip


def _rule(spec: GoalSpec, v: np.ndarray, v0: float, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """``(progress, met)`` of one goal: progress in the property's units, higher better."""
    with np.errstate(invalid="ignore"):
        if spec.kind == "max":
            return v - v0, v > v0
        if spec.kind == "min":
            return v0 - v, v < v0
        if spec.kind == "keep":
            return -np.abs(v - v0), np.abs(v - v0) <= tol
        target = v0 + spec.value if spec.kind == "change" else spec.value  # type: ignore[operator]
        # progress: how much closer to the target than the start was
        return abs(v0 - target) - np.abs(v - target), np.abs(v - target) <= tol


def judge_table(
    task: MoleculeTask, values: pd.DataFrame, starts: pd.DataFrame, similarity: np.ndarray,
    same: np.ndarray, spread: Mapping[str, float], tolerance: Mapping[str, float],
) -> Verdicts:  # fmt: skip
    """:func:`judge` of one result per start, row by row (``starts``: the starts' values)."""
    parts = [
        judge(task, values.iloc[[i]], starts.iloc[i], similarity[[i]], same[[i]], spread,
              tolerance)
        for i in range(len(values))
    ]  # fmt: skip
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0)  # noqa: E731
    goals = np.concatenate([p.goals for p in parts]) if parts else np.zeros((0, len(task.specs)))
    return Verdicts(cat("score"), goals, cat("bounds"), cat("similar"), cat("acceptable"),
                    cat("success"))  # fmt: skip


def describe(task: MoleculeTask) -> str:
    """The task in one line, e.g. ``plogp=max, similarity >= 0.4``."""
    parts = list(task.goals)
    parts += [f"{p} in [{'' if lo is None else lo}, {'' if hi is None else hi}]"
              for p, (lo, hi) in task.bounds.items()]  # fmt: skip
    return f"{', '.join(parts)}, similarity >= {task.similarity:g}"
