"""The success rules of goals: one implementation, read by the closed loop
(:mod:`latentsteer.guide`), the grading of finished runs (:mod:`latentsteer.grading`) and the
selection of measured candidates (:mod:`latentsteer.verdicts`), in every domain.

A goal compares a property's value after steering with its value at the start:

=================  ===============================================  =======================
goal               holds when                                       progress (higher better)
=================  ===============================================  =======================
``prop=max``       the value went up (any amount)                   ``after − before``
``prop=min``       the value went down                              ``before − after``
``prop=keep``      ``|after − before| <= tol``                      ``−|after − before|``
``prop=+D|-D``     ``|after − (before + D)| <= tol``                how much closer to
                                                                    ``before + D`` than the
                                                                    start was
``prop=VALUE``     ``|after − VALUE| <= tol``                       the same, to ``VALUE``
``prop>=±D``       ``after − before >= D``                          ``after − before``
``prop<=±D``       ``after − before <= D``                          ``before − after``
=================  ===============================================  =======================

The one-sided goals take no tolerance: "raised by at least 1" means 1, and the oracle's own
error is reported beside the result (a learned oracle's cross-validated error).

``tol`` is the property's tolerance in its units (the domain's table, or an experiment's
override, :mod:`latentsteer.tolerances`). A NaN value (nothing measured) meets no rule.
Class goals (``digit=K``) are read from a classifier's label, not from this table.
"""

from __future__ import annotations

import numpy as np

from latentsteer.goalspec import GoalSpec


def target(spec: GoalSpec, before: np.ndarray | float) -> np.ndarray | float:
    """The value a band goal asks for: ``before + D`` for ``+D``/``-D``, ``before`` for
    ``keep``, ``VALUE`` for a target.

    Raises:
        ValueError: ``spec`` is an open-ended goal (``max``/``min``), which has no target.
    """
    if spec.kind == "keep":
        return before
    if spec.kind == "change":
        return before + spec.value  # type: ignore[operator]
    if spec.kind == "number":
        return np.full_like(np.asarray(before, dtype=float), float(spec.value))  # type: ignore[arg-type]
    raise ValueError(f"goal {spec.text!r} is open-ended: it has no target value")


def goal_rule(
    spec: GoalSpec, before: np.ndarray, after: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """Progress and verdict of one regression goal, sample by sample.

    Args:
        spec: the goal.
        before: ``(n,)`` the property at the start (or a scalar for every sample).
        after: ``(n,)`` the property now.
        tol: the tolerance of band goals, in the property's units.

    Returns:
        ``(progress (n,), met (n,) bool)``: progress in the property's units, higher better
        (see the module docstring); ``met`` where the goal holds.
    """
    after = np.asarray(after, dtype=float)
    with np.errstate(invalid="ignore"):
        if spec.kind == "max":
            progress = after - before
            return progress, progress > 0
        if spec.kind == "min":
            progress = before - after
            return progress, progress > 0
        if spec.kind == "at_least":
            progress = after - before
            return progress, progress >= spec.value  # type: ignore[operator]
        if spec.kind == "at_most":
            progress = before - after
            return progress, after - before <= spec.value  # type: ignore[operator]
        want = target(spec, before)
        miss = np.abs(after - want)
        if spec.kind == "keep":
            return -miss, miss <= tol
        return np.abs(before - want) - miss, miss <= tol
