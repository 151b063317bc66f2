"""The settings of the molecule proposers: an experiment's ``proposer`` mapping, typed and
checked (:class:`ProposalSettings`).

A leaf module, apart from the proposers themselves: a change to it re-runs the steering
stages that read it, not the proposers' code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ProposalSettings:
    """How the molecule proposers propose: an experiment's ``proposer`` settings (the
    defaults are the measured ones). The ascent's ``steps`` and ``lr``, and the searches'
    ``sigma``, ``population``, ``box`` and ``init``, are the experiment's own fields.

    Attributes:
        replicas: noisy copies of each start's code that climb the heads' objective.
        token_samples: draws from the decoder's token distributions per decoded step.
        temperature: of those draws.
        invert_steps: Adam steps that find a code decoding to the start (every method on
            codes starts there).
        noise: Gaussian spread of the replicas around that code.
        edits: token rows per start with one or two tokens redrawn (0 = off).
        neighbours: training molecules most similar to each start offered in the first
            round, when the training molecules are at hand (0 = off; :mod:`.neighbours`).
    """

    replicas: int = 8
    token_samples: int = 3
    temperature: float = 1.0
    invert_steps: int = 200
    noise: float = 0.05
    edits: int = 64
    neighbours: int = 64

    def __post_init__(self) -> None:
        for key, least in (("replicas", 1), ("token_samples", 0), ("invert_steps", 0),
                           ("edits", 0), ("neighbours", 0)):  # fmt: skip
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"proposer.{key} must be an integer >= {least}; got {value!r}")
        for key, positive in (("temperature", True), ("noise", False)):
            value = getattr(self, key)
            ok = not isinstance(value, bool) and isinstance(value, int | float) and (
                value > 0 if positive else value >= 0)  # fmt: skip
            if not ok:
                raise ValueError(f"proposer.{key} must be a number {'>' if positive else '>='} "
                                 f"0; got {value!r}")  # fmt: skip

    @classmethod
    def of(cls, given: Mapping[str, Any]) -> ProposalSettings:
        """The settings an experiment's ``proposer`` mapping names, the rest by default.

        Raises:
            ValueError: an unknown name or a bad value (one line).
        """
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"proposer: unknown setting {', '.join(unknown)}; accepted: "
                             f"{', '.join(names)}")  # fmt: skip
        return cls(**given)
