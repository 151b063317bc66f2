"""Steering goals: what a code should achieve, scored from the model's heads.

A goal is declared without a model (``Maximize("thickness")``, ``Class("digit", 3)``) and
bound to one model and the starting codes with :meth:`Goal.bind`. A bound goal is a callable
``z (n, d) -> (n,)``, higher is better, as BoTorch's optimisers take objectives; it also says
per sample whether it is satisfied and by how much it is violated.

Goals combine in :func:`combine` as a weighted sum of scores; goals marked
``constraint=True`` enter as a **quadratic penalty** ``-penalty · violation²`` instead. A
projection would need the feasible set in latent space in closed form ("the judge still
reads a 7" has none), while the penalty is differentiable, batched, and is zero — so it
leaves the objective alone — wherever the constraint already holds.

Regression scores are in standard deviations of the head's training targets, so weights are
comparable across properties and units.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from latentsteer.model import MultiHeadVAE
from latentsteer.readout import Predictions, Readout

#: How far (in training standard deviations) a regression target may lie from the mean.
PLAUSIBLE_SD = 6.0


@dataclass
class BoundGoal:
    """A goal bound to a model and starting codes.

    Attributes:
        label: readable name, e.g. ``thickness=max``.
        weight: weight in the combined objective.
        constraint: enters as a penalty rather than a score.
        score: predictions → ``(n,)``, higher is better.
        satisfied: predictions → ``(n,)`` bool; ``None`` for open-ended goals (max/min).
        violation: predictions → ``(n,)`` ≥ 0, zero when satisfied.
    """

    label: str
    weight: float
    constraint: bool
    score: Callable[[Predictions], torch.Tensor]
    satisfied: Callable[[Predictions], torch.Tensor] | None
    violation: Callable[[Predictions], torch.Tensor]
    readout: Readout = field(repr=False)
    # (n,) where the heads should read, for band goals (target, +D, keep on a regression
    # head); a closed loop (guide.py) moves it so that the *measured* value lands on target.
    center: torch.Tensor | None = field(default=None, repr=False)
    # (n,) the probability a class goal asks of its class; a closed loop raises it in place
    # for a sample whose drawn digit the oracles saw slip (guide.py).
    floor: torch.Tensor | None = field(default=None, repr=False)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """Score codes ``(n, d)`` → ``(n,)``."""
        return self.score(self.readout(z))


class Goal:
    """Base class of declared (unbound) goals."""

    weight: float = 1.0
    constraint: bool = False

    def bind(
        self, model: MultiHeadVAE, z0: torch.Tensor, readout: Readout | None = None
    ) -> BoundGoal:
        """Bind to ``model`` and starting codes ``z0 (n, d)``.

        Args:
            model: the model whose heads score the goal.
            z0: ``(n, d)`` starting codes (for goals relative to the start).
            readout: codes → predictions; default ``model.predict`` (see
                :mod:`latentsteer.readout`).
        """
        return self._bind(model, z0, readout or model.predict)

    def _bind(self, model: MultiHeadVAE, z0: torch.Tensor, read: Readout) -> BoundGoal:
        raise NotImplementedError  # pragma: no cover

    # helpers -----------------------------------------------------------------
    @staticmethod
    def _head(model: MultiHeadVAE, name: str, kind: str | None = None) -> int:
        """Index of head ``name``, checking it exists and (unless ``None``) is of ``kind``."""
        if name not in model.head_names:
            raise ValueError(
                f"unknown property {name!r}; this model has {', '.join(model.head_names)}"
            )
        spec = model.head_spec(name)
        if kind is not None and spec.kind != kind:
            use = "Class/Keep" if spec.kind == "class" else "Maximize/Minimize/Target/Increase"
            raise ValueError(f"{name!r} is a {spec.kind} head; use {use} with it")
        return model.head_names.index(name)

    def _bound(
        self, read: Readout, label: str, score, satisfied, violation, center=None, floor=None
    ) -> BoundGoal:  # fmt: skip
        return BoundGoal(
            label, self.weight, self.constraint, score, satisfied, violation, read, center, floor
        )


def _scale(model: MultiHeadVAE, i: int) -> tuple[float, float]:
    return float(model.target_mean[i]), float(model.target_std[i])


@dataclass
class Maximize(Goal):
    """Push a regression property up (open-ended)."""

    prop: str
    weight: float = 1.0
    constraint: bool = False

    _sign: ClassVar[float] = 1.0
    _word: ClassVar[str] = "max"

    def _bind(self, model: MultiHeadVAE, z0: torch.Tensor, read: Readout) -> BoundGoal:
        _, sd = _scale(model, self._head(model, self.prop, "regression"))
        sign = self._sign
        zero = lambda p: torch.zeros_like(p[self.prop])  # noqa: E731
        score = lambda p: sign * p[self.prop] / sd  # noqa: E731
        return self._bound(read, f"{self.prop}={self._word}", score, None, zero)


@dataclass
class Minimize(Maximize):
    """Push a regression property down (open-ended)."""

    _sign: ClassVar[float] = -1.0
    _word: ClassVar[str] = "min"


@dataclass
class AtLeast(Goal):
    """Move a regression property by at least ``by`` from each sample's start: up for a
    positive ``by`` (``prop>=+D``), or, with ``lower=True``, to at most ``by`` from it
    (``prop<=-D``).

    The heads climb as for :class:`Maximize`; unlike it, the goal says when it holds, so a
    closed loop can settle on the first frame its oracles accept rather than climb on.
    """

    prop: str
    by: float
    lower: bool = False
    weight: float = 1.0
    constraint: bool = False

    def _bind(self, model: MultiHeadVAE, z0: torch.Tensor, read: Readout) -> BoundGoal:
        _, sd = _scale(model, self._head(model, self.prop, "regression"))
        if not math.isfinite(self.by):
            raise ValueError(f"{self.prop}: the change must be a number; got {self.by}")
        sign = -1.0 if self.lower else 1.0
        with torch.no_grad():
            start = read(z0)[self.prop]  # (n,)
        # progress past the bound, in the property's units (>= 0 when it holds)
        past = lambda p: sign * (p[self.prop] - start - self.by)  # noqa: E731
        label = f"{self.prop}{'<=' if self.lower else '>='}{self.by:+g}"
        return self._bound(
            read, label,
            lambda p: sign * p[self.prop] / sd,
            lambda p: past(p) >= 0,
            lambda p: (-past(p)).clamp_min(0) / sd,
        )  # fmt: skip


def _band_goal(
    goal: Goal, read: Readout, prop: str, center: torch.Tensor, tol: float, sd: float,
    label: str,
) -> BoundGoal:  # fmt: skip
    """Shared scoring of Target, Increase and Keep on a regression head: stay within
    ``center ± tol``.

    ``center`` ``(n,)`` is held by the bound goal and read at every call, so a closed loop
    may move it in place (see :mod:`latentsteer.guide`).
    """
    gap = lambda p: (p[prop] - center).abs()  # noqa: E731
    return goal._bound(
        read, label,
        lambda p: -((gap(p) / sd) ** 2),
        lambda p: gap(p) <= tol,
        lambda p: (gap(p) - tol).clamp_min(0) / sd,
        center,
    )  # fmt: skip


@dataclass
class Target(Goal):
    """Bring a regression property to ``value`` ± ``tol`` (original units)."""

    prop: str
    value: float
    tol: float = 0.25
    weight: float = 1.0
    constraint: bool = False

    def _bind(self, model: MultiHeadVAE, z0: torch.Tensor, read: Readout) -> BoundGoal:
        mean, sd = _scale(model, self._head(model, self.prop, "regression"))
        lo, hi = mean - PLAUSIBLE_SD * sd, mean + PLAUSIBLE_SD * sd
        if not (math.isfinite(self.value) and lo <= self.value <= hi):
            raise ValueError(
                f"{self.prop}={self.value:g} is impossible for this model: its training data span "
                f"about {max(lo, 0.0):.2f} to {hi:.2f}"
            )
        if self.tol <= 0:
            raise ValueError(f"tolerance must be positive; got {self.tol}")
        center = torch.full((len(z0),), float(self.value), device=z0.device)
        return _band_goal(
            self, read, self.prop, center, self.tol, sd, f"{self.prop}={self.value:g}"
        )


@dataclass
class Increase(Goal):
    """Change a regression property by ``by`` (± ``tol``) from each sample's start.

    A negative ``by`` lowers it. The goal is a band around the start plus ``by``, not a
    floor: "+2 px" asks for 2 px more, and 5 px more is not what was asked.
    """

    prop: str
    by: float
    tol: float = 0.25
    weight: float = 1.0
    constraint: bool = False

    def _bind(self, model: MultiHeadVAE, z0: torch.Tensor, read: Readout) -> BoundGoal:
        _, sd = _scale(model, self._head(model, self.prop, "regression"))
        if not (math.isfinite(self.by) and self.by != 0):
            raise ValueError(f"{self.prop}: the change must be a non-zero number; got {self.by}")
        if self.tol <= 0:
            raise ValueError(f"tolerance must be positive; got {self.tol}")
        with torch.no_grad():
            center = read(z0)[self.prop] + self.by  # (n,)
        return _band_goal(self, read, self.prop, center, self.tol, sd, f"{self.prop}={self.by:+g}")


def _class_goal(
    goal: Goal, read: Readout, head: str, k: torch.Tensor, label: str,
    confidence: float | torch.Tensor,
) -> BoundGoal:  # fmt: skip
    """Shared scoring of Class and Keep on a class head: log-probability of class ``k``.

    ``confidence`` is the probability of ``k`` that satisfies the goal: one number, or
    ``(n,)`` per sample.
    """
    floor = torch.as_tensor(confidence, dtype=torch.float32, device=k.device)
    floor = (floor.expand(len(k)) if floor.ndim == 0 else floor).clone()  # (n,), mutable

    def logp(p: Predictions) -> torch.Tensor:
        probs = p[head].clamp_min(1e-12)
        return probs.gather(1, k[:, None]).squeeze(1).log()

    def sat(p: Predictions) -> torch.Tensor:
        return (p[head].argmax(1) == k) & (logp(p) >= floor.log())

    def short(p: Predictions) -> torch.Tensor:
        return (floor.log() - logp(p)).clamp_min(0)

    return goal._bound(read, label, logp, sat, short, floor=floor)


@dataclass
class Class(Goal):
    """Make a class head read class ``k`` with at least ``confidence``."""

    head: str
    k: int
    confidence: float = 0.9
    weight: float = 1.0
    constraint: bool = False

    def _bind(self, model: MultiHeadVAE, z0: torch.Tensor, read: Readout) -> BoundGoal:
        i = self._head(model, self.head, "class")
        classes = model.config.heads[i].classes
        if not 0 <= self.k < classes:
            raise ValueError(f"{self.head}={self.k}: classes run from 0 to {classes - 1}")
        k = torch.full((len(z0),), self.k, dtype=torch.long, device=z0.device)
        return _class_goal(self, read, self.head, k, f"{self.head}={self.k}", self.confidence)


@dataclass
class Keep(Goal):
    """Stay in the starting class (class head) or at the starting value ± ``tol``.

    On a class head the class to keep is the head's reading of each start unless
    ``reference`` ``(n,)`` names it (the true label of a test digit, or what an oracle
    reads at the start: a head that misreads a start would otherwise keep the wrong digit).
    Its probability must stay at least ``min(confidence, its probability at the start)``.
    The floor is relative on purpose: demanding 90% of a class the head reads with 45%
    would redraw the digit.
    """

    head: str
    tol: float = 0.25
    confidence: float = 0.9
    weight: float = 1.0
    constraint: bool = True
    reference: torch.Tensor | None = field(default=None, repr=False)

    def _bind(self, model: MultiHeadVAE, z0: torch.Tensor, read: Readout) -> BoundGoal:
        i = self._head(model, self.head)
        with torch.no_grad():
            start = read(z0)[self.head]
        if model.head_spec(self.head).kind == "class":
            if self.reference is None:
                k = start.argmax(1)  # (n,)
            else:
                k = torch.as_tensor(self.reference, dtype=torch.long, device=z0.device)
                if k.shape != (len(z0),) or not ((k >= 0) & (k < start.shape[1])).all():
                    raise ValueError(
                        f"{self.head}=keep: reference must hold {len(z0)} classes from 0 to "
                        f"{start.shape[1] - 1}"
                    )
            floor = start.gather(1, k[:, None]).squeeze(1).clamp(max=self.confidence)
            return _class_goal(self, read, self.head, k, f"{self.head}=keep", floor)
        _, sd = _scale(model, i)
        return _band_goal(self, read, self.head, start.clone(), self.tol, sd, f"{self.head}=keep")


def all_satisfied(goals: list[BoundGoal], pred: Predictions) -> torch.Tensor:
    """``(n,)`` whether every goal holds (call only when none is open-ended, max/min)."""
    first = next(iter(pred.values()))
    ok = torch.ones(len(first), dtype=torch.bool, device=first.device)
    for g in goals:
        ok &= g.satisfied(pred)  # type: ignore[misc]
    return ok


def combine(goals: list[BoundGoal], penalty: float = 10.0) -> Callable[[Predictions], torch.Tensor]:
    """The steering objective over predictions: Σ wᵢ·scoreᵢ − penalty·Σ wⱼ·violationⱼ².

    Args:
        goals: bound goals; those with ``constraint=True`` enter as penalties.
        penalty: weight of the quadratic constraint penalty.

    Returns:
        predictions → ``(n,)`` objective values, higher is better.
    """

    def objective(p: Predictions) -> torch.Tensor:
        total = 0.0
        for g in goals:
            if g.constraint:
                total = total - penalty * g.weight * g.violation(p) ** 2
            else:
                total = total + g.weight * g.score(p)
        return total  # type: ignore[return-value]

    return objective
