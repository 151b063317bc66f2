"""Proposers run in rounds under an oracle budget, and the selection of each start's result
among the candidates an oracle measured.

A proposer (latent ascent decoding its path, a domain's own edits, the nearest training
samples, ...) offers each start candidates with the heads' reading of them. The engine ranks
them by the verdicts of that reading (:meth:`latentsteer.verdicts.Verdicts.ranked`), spends
an equal share of what is left of each start's budget per remaining round on the most
promising ones it has not asked about, and lets the next round propose from what the oracle
measured. At the end every start's result is the best *acceptable* candidate the oracle
measured (:meth:`~latentsteer.verdicts.Verdicts.best`), never the one the heads liked best:
the heads only decide what to ask the oracle about.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from latentsteer.budget import BudgetedOracle
from latentsteer.verdicts import Verdicts


@dataclass
class Offer:
    """What a proposer offers one start in one round.

    Attributes:
        keys: the candidates' keys (what the oracle caches and counts them by).
        verdicts: the verdicts of the heads' reading of them, in the same order.
    """

    keys: Sequence[str]
    verdicts: Verdicts


def spend_in_rounds(
    propose: Callable[[int], Sequence[Offer]], oracle: BudgetedOracle, rounds: int
) -> None:
    """Run ``rounds`` rounds of ``propose`` against ``oracle``'s budget.

    Args:
        propose: round ``r`` → one :class:`Offer` per start. A later round may read what
            the oracle measured so far (``oracle.asked``, ``oracle.lookup``) to propose from
            each start's best result.
        oracle: the budgeted oracle; what it measured is what selection chooses from.
        rounds: how many rounds; each spends at most an equal share of what is left.
    """
    for r in range(rounds):
        requests = {}
        for i, offer in enumerate(propose(r)):
            ranked = [offer.keys[k] for k in offer.verdicts.ranked()
                      if offer.keys[k] not in oracle.asked[i]]  # fmt: skip
            # an equal share of what is left for each remaining round (rounded up)
            requests[i] = ranked[: -(-oracle.left(i) // (rounds - r))]
        oracle.measure_many(requests)


@dataclass
class Selection:
    """Each start's result among the candidates the oracle measured.

    Attributes:
        best: per start, the key of its best acceptable candidate, or ``None``.
        paths: per start, the acceptable candidates that raised the best score so far, in
            the order they were asked about (for the path a grid shows).
    """

    best: list[str | None]
    paths: list[list[str]]


def select_measured(
    oracle: BudgetedOracle,
    grade: Callable[[int, list[str]], Verdicts],
    agree: Callable[[int, list[str]], np.ndarray] | None = None,
) -> Selection:
    """The best acceptable candidate of every start among those ``oracle`` measured.

    Args:
        grade: start ``i`` and the keys asked about → the verdicts of the oracle's measures.
        agree: start ``i`` and those keys → ``(m,)`` where the heads' own verdict is success:
            among candidates the oracle finds equally good, one the heads also call a
            success is preferred, so the model's claim matches what was measured (the
            oracle's verdict never changes). ``None``: no preference.
    """
    best: list[str | None] = []
    paths: list[list[str]] = []
    for i in range(len(oracle.asked)):
        asked = list(oracle.asked[i])
        verdict = grade(i, asked)
        k = verdict.best(None if agree is None else agree(i, asked))
        best.append(None if k is None else asked[k])
        paths.append([asked[j] for j in verdict.improving()])
    return Selection(best, paths)
