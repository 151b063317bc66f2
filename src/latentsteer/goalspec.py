"""Goals written as text, as ``params.yaml`` and the CLI take them.

========================  =======================================================
``thickness=max``          :class:`~latentsteer.objectives.Maximize` (``min``: Minimize)
``thickness=4.0``          :class:`~latentsteer.objectives.Target` within ``tol``
``thickness=+1.5``         :class:`~latentsteer.objectives.Increase` (``-1.5`` lowers it)
``thickness=keep``         :class:`~latentsteer.objectives.Keep` the start value ± ``tol``
``pic50>=+1``              raised by at least 1 (:class:`~latentsteer.objectives.AtLeast`;
                           ``qed>=-0.05``: lowered by no more than 0.05)
``sa<=-0.5``               lowered by at least 0.5 (:class:`~latentsteer.objectives.AtLeast`
                           with ``lower=True``)
``digit=3``                :class:`~latentsteer.objectives.Class` 3
``digit=keep``             :class:`~latentsteer.objectives.Keep` the start class
``...@W``                  any of these with weight ``W`` (default 1)
========================  =======================================================

``keep`` goals are constraints (a penalty when broken); the others are scores.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from latentsteer.model import MultiHeadVAE
from latentsteer.objectives import (
    AtLeast,
    Class,
    Goal,
    Increase,
    Keep,
    Maximize,
    Minimize,
    Target,
)

SYNTAX = (
    "accepted: prop=max|min|VALUE|+DELTA|-DELTA|keep, prop>=±DELTA, prop<=±DELTA, "
    "class=K|keep, optionally @WEIGHT"
)
_PATTERN = re.compile(r"\s*([A-Za-z_]\w*)\s*(>=|<=|=)\s*([^@\s]+)\s*(?:@\s*(\S+))?\s*")
#: the one-sided change goals: ``prop>=±D`` (at least D more), ``prop<=±D`` (at most D more)
BOUNDED = {">=": "at_least", "<=": "at_most"}


@dataclass(frozen=True)
class GoalSpec:
    """One parsed goal string.

    Attributes:
        text: the string as written.
        prop: head name.
        kind: ``max``, ``min``, ``keep``, ``change`` (signed), ``at_least`` / ``at_most``
            (a signed change, one-sided) or ``number`` (a class or a target value,
            depending on the head).
        value: the number; ``None`` for max/min/keep.
        weight: weight in the combined objective.
    """

    text: str
    prop: str
    kind: str
    value: float | None
    weight: float

    def goal(self, model: MultiHeadVAE, tol: float = 0.25, confidence: float = 0.9) -> Goal:
        """The :class:`Goal` this spec names on ``model``'s heads.

        Raises:
            ValueError: an unknown head, or a goal that does not fit the head's kind.
        """
        if self.prop not in model.head_names:
            raise ValueError(
                f"goal {self.text!r}: unknown property {self.prop!r}; this model has "
                f"{', '.join(model.head_names)}"
            )
        kind = model.head_spec(self.prop).kind
        w = self.weight
        if self.kind == "keep":
            return Keep(self.prop, tol=tol, confidence=confidence, weight=w)
        if kind == "class":
            if self.kind != "number" or self.value != int(self.value):  # type: ignore[arg-type]
                raise ValueError(
                    f"goal {self.text!r}: {self.prop!r} is a class head; "
                    f"accepted: {self.prop}=K or {self.prop}=keep"
                )
            return Class(self.prop, int(self.value), confidence=confidence, weight=w)  # type: ignore[arg-type]
        if kind == "class" and self.kind in BOUNDED.values():
            raise ValueError(f"goal {self.text!r}: {self.prop!r} is a class head; "
                             f"accepted: {self.prop}=K or {self.prop}=keep")  # fmt: skip
        if self.kind == "max":
            return Maximize(self.prop, weight=w)
        if self.kind == "min":
            return Minimize(self.prop, weight=w)
        if self.kind in BOUNDED.values():  # the heads climb until past the bound
            return AtLeast(self.prop, self.value, lower=self.kind == "at_most", weight=w)  # type: ignore[arg-type]
        if self.kind == "change":
            return Increase(self.prop, by=self.value, tol=tol, weight=w)  # type: ignore[arg-type]
        return Target(self.prop, self.value, tol=tol, weight=w)  # type: ignore[arg-type]


def parse_goal(text: str) -> GoalSpec:
    """Parse one goal string (see the module docstring).

    Raises:
        ValueError: text that does not follow the syntax, naming what is accepted.
    """
    m = _PATTERN.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"bad goal {text!r}; {SYNTAX}")
    prop, relation, rhs, weight_text = m.groups()
    weight = 1.0
    if weight_text is not None:
        try:
            weight = float(weight_text)
        except ValueError:
            raise ValueError(f"bad goal {text!r}: weight {weight_text!r} is not a number") from None
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"bad goal {text!r}: weight must be a positive number")
    word = rhs.lower()
    if relation in BOUNDED:
        if rhs[0] not in "+-":
            raise ValueError(f"bad goal {text!r}: {relation} takes a signed change from the "
                             f"start (e.g. {prop}{relation}+1); {SYNTAX}")  # fmt: skip
    elif word in ("max", "min", "keep"):
        return GoalSpec(text, prop, word, None, weight)
    try:
        value = float(rhs)
    except ValueError:
        raise ValueError(f"bad goal {text!r}: {rhs!r} is not accepted; {SYNTAX}") from None
    if not math.isfinite(value):
        raise ValueError(f"bad goal {text!r}: the value must be finite")
    if relation in BOUNDED:
        return GoalSpec(text, prop, BOUNDED[relation], value, weight)
    # A plain number is a class for a class head and a target value for a regression
    # head; goal() decides once the model is known.
    return GoalSpec(text, prop, "change" if rhs[0] in "+-" else "number", value, weight)


def check_goal_set(specs: list[GoalSpec]) -> None:
    """Refuse more than one goal on one property: a second goal on a property either
    contradicts the first (``thickness=max`` and ``thickness=min``) or repeats it.

    Raises:
        ValueError: two goals on one property, naming both.
    """
    seen: dict[str, GoalSpec] = {}
    for spec in specs:
        first = seen.setdefault(spec.prop, spec)
        if first is not spec:
            raise ValueError(f"goals {first.text.strip()} and {spec.text.strip()} both set "
                             f"{spec.prop}; give one goal per property")  # fmt: skip
