"""Grading measured candidates against their start, and choosing among them.

A method that asks an oracle about several candidates per start (latent ascent's proposals,
a search's population, a GA's offspring) needs the same three answers about each: does it
meet the goals (:func:`latentsteer.rules.goal_rule`), does it satisfy the constraints
relative to the start, and how far did it get. :func:`judge` gives them for one start's
candidates from any values (an oracle's measures, or the heads' predictions to compare);
:meth:`Verdicts.best` is the selection every such method shares.

Constraints:

==============================  ====================================================
bound ``prop in [lo, hi]``      ``lo <= value <= hi`` (either side may be open)
similarity to the start ``δ``   the domain's similarity ≥ δ, and another sample than
                                the start
``prop=keep``                   the value moved by at most the tolerance
==============================  ====================================================

A candidate is *acceptable* when it is similar enough, every ``keep`` holds and its score
(the weighted sum of each goal's progress in units of that property's spread over the
training data, so properties of different scales weigh alike) is above 0: better than the
start. It is a *success* when it is similar enough, every goal holds and it lies inside every
bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from latentsteer.goalspec import GoalSpec
from latentsteer.rules import goal_rule


class Constrained(Protocol):
    """What :func:`judge` reads of a request: its goals, bounds and similarity threshold."""

    specs: list[GoalSpec]
    bounds: Mapping[str, Sequence[float | None]]
    similarity: float


@dataclass
class Verdicts:
    """How candidates fare against one start, by one set of values (measured or predicted).

    Attributes:
        score: ``(m,)`` weighted progress over the start (see the module docstring).
        goals: ``(m, g)`` each goal's rule, goal by goal.
        bounds: ``(m,)`` every bound held.
        similar: ``(m,)`` similarity ≥ δ and another sample than the start.
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
        then highest score; ``None`` when none is acceptable."""
        idx = np.flatnonzero(self.acceptable)
        if len(idx) == 0:
            return None
        met = self.goals[idx].sum(1) + self.bounds[idx]
        sure = np.zeros(len(idx)) if agree is None else np.asarray(agree, dtype=float)[idx]
        return int(idx[np.lexsort((-self.score[idx], -sure, -met))[0]])

    def ranked(self) -> np.ndarray:
        """Indices of the similar candidates, most promising first (rules met, then score):
        the order in which to spend oracle calls on predicted verdicts."""
        idx = np.flatnonzero(self.similar)
        met = self.goals[idx].sum(1) + self.bounds[idx]
        return idx[np.lexsort((-self.score[idx], -met))]

    def improving(self) -> np.ndarray:
        """Indices of the acceptable candidates that raised the best score so far, in order
        (the path a run shows from its start to its result)."""
        out, best = [], -np.inf
        for k in np.flatnonzero(self.acceptable):
            if self.score[k] > best:
                out.append(k)
                best = self.score[k]
        return np.asarray(out, dtype=np.int64)


def judge(
    request: Constrained,
    values: pd.DataFrame,
    start: Mapping[str, float],
    similarity: np.ndarray,
    same: np.ndarray,
    spread: Mapping[str, float],
    tolerance: Mapping[str, float],
) -> Verdicts:
    """Grade ``m`` candidates of one start.

    Args:
        request: the goals, bounds and similarity threshold.
        values: ``m`` rows with a column per property the request reads (NaN: nothing
            measured, fails every rule).
        start: the start's value of each of those properties, by the same reader.
        similarity: ``(m,)`` the domain's similarity of each candidate to the start.
        same: ``(m,)`` the candidate is the start itself.
        spread: property → its standard deviation over the training data.
        tolerance: property → what counts as "got it", in its units.
    """
    m = len(values)
    score = np.zeros(m)
    rules = np.ones((m, len(request.specs)), dtype=bool)
    keep = np.ones(m, dtype=bool)
    for j, spec in enumerate(request.specs):
        v = values[spec.prop].to_numpy(dtype=float)
        v0, tol, sd = float(start[spec.prop]), tolerance[spec.prop], spread[spec.prop]
        progress, rules[:, j] = goal_rule(spec, v0, v, tol)
        if spec.kind == "keep":
            keep &= rules[:, j]
        else:
            score += spec.weight * progress / sd
    inside = np.ones(m, dtype=bool)
    for prop, (lo, hi) in request.bounds.items():
        v = values[prop].to_numpy(dtype=float)
        inside &= (
            np.isfinite(v)
            & (v >= (-np.inf if lo is None else lo))
            & (v <= (np.inf if hi is None else hi))
        )
    score = np.where(np.isfinite(score), score, -np.inf)
    similar = (similarity >= request.similarity) & ~same
    return Verdicts(
        score, rules, inside, similar, similar & keep & (score > 0),
        similar & rules.all(1) & inside,
    )  # fmt: skip


def judge_table(
    request: Constrained, values: pd.DataFrame, starts: pd.DataFrame, similarity: np.ndarray,
    same: np.ndarray, spread: Mapping[str, float], tolerance: Mapping[str, float],
) -> Verdicts:  # fmt: skip
    """:func:`judge` of one result per start, row by row (``starts``: the starts' values)."""
    parts = [
        judge(request, values.iloc[[i]], starts.iloc[i], similarity[[i]], same[[i]], spread,
              tolerance)
        for i in range(len(values))
    ]  # fmt: skip
    if not parts:
        empty = np.zeros(0, dtype=bool)
        return Verdicts(np.zeros(0), np.zeros((0, len(request.specs)), dtype=bool), empty,
                        empty, empty, empty)  # fmt: skip
    fields = ("score", "goals", "bounds", "similar", "acceptable", "success")
    return Verdicts(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))
