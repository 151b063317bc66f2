"""RDKit as the oracle of molecule steering, with every call counted.

An *oracle call* is one distinct molecule whose properties RDKit measures for one start and
one method: every method (latent ascent and each baseline) is held to the same number per
start, and reports how many it spent. Asking again about a molecule it already asked about
is free, as it would be for any method that keeps its own results.

Measured values are cached by canonical SMILES across methods, so running several methods
on the same starts measures each molecule once in wall time; the cache never changes what a
method is charged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from latentsteer.domains.molecules.properties import COLUMNS, measure_molecules


class CountedOracle:
    """RDKit's measures with per-start call counting for one method.

    Args:
        budget: calls allowed per start.
        n: number of starts.
        cache: measures shared with other methods (canonical SMILES → row), or ``None``.
        workers: processes for RDKit (``None``: one per core).
    """

    def __init__(
        self,
        budget: int,
        n: int,
        cache: dict[str, dict[str, float]] | None = None,
        workers: int | None = None,
    ) -> None:
        self.budget = budget
        self.calls = np.zeros(n, dtype=np.int64)
        self.cache = {} if cache is None else cache
        # per start, the molecules asked about, in the order asked
        self.asked: list[dict[str, None]] = [{} for _ in range(n)]
        self.workers = workers

    def left(self, i: int) -> int:
        """Calls start ``i`` may still spend."""
        return self.budget - int(self.calls[i])

    def measure(self, i: int, smiles: Sequence[str]) -> pd.DataFrame:
        """RDKit's measures of ``smiles`` for start ``i``, charging each new one a call.

        Molecules beyond the budget are not measured: their rows are NaN. Returns one row
        per SMILES, in order, with a column per property.
        """
        return self.measure_many({i: smiles})[i]

    def measure_many(self, requests: Mapping[int, Sequence[str]]) -> dict[int, pd.DataFrame]:
        """:meth:`measure` for several starts at once (one pool of workers for all):
        start index → its SMILES."""
        plans = []
        for i, smiles in requests.items():
            new = [s for s in dict.fromkeys(smiles) if s and s not in self.asked[i]]
            allowed = new[: max(0, self.left(i))]
            self.asked[i].update(dict.fromkeys(allowed))
            self.calls[i] += len(allowed)
            plans.extend(allowed)
        self.fill(plans)
        return {i: self.lookup(s, self.asked[i]) for i, s in requests.items()}

    def fill(self, smiles: Sequence[str]) -> None:
        """Measure what the cache lacks (no call is charged here)."""
        todo = [s for s in dict.fromkeys(smiles) if s not in self.cache]
        if todo:
            table = measure_molecules(todo, workers=self.workers if len(todo) > 256 else 1,
                                      progress=False)  # fmt: skip
            for s, row in zip(todo, table[list(COLUMNS)].to_dict("records"), strict=True):
                self.cache[s] = row

    def lookup(
        self, smiles: Sequence[str], allowed: Mapping[str, None] | None = None
    ) -> pd.DataFrame:
        """Cached measures of ``smiles`` (NaN rows for molecules not measured or not in
        ``allowed``)."""
        empty = dict.fromkeys(COLUMNS, np.nan)
        rows = [self.cache.get(s, empty) if allowed is None or s in allowed else empty
                for s in smiles]  # fmt: skip
        return pd.DataFrame(rows, columns=list(COLUMNS), index=range(len(smiles)))
