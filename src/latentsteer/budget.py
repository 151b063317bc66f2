"""An oracle behind a budget: every call counted per start, measures cached, calls capped.

An *oracle call* is one distinct sample an oracle measures for one start and one method.
Every method that asks an oracle (latent ascent ranking its proposals, each search, a GA) is
held to the same number per start and reports how many it spent; asking again about a
sample it already asked about is free, as it would be for any method that keeps its own
results.

Measured values are cached by the sample's key (a canonical string: molecules use their
canonical SMILES) across methods, so running several methods on the same starts measures
each sample once in wall time; the cache never changes what a method is charged.

A domain supplies the measuring function and the columns it fills
(:class:`~latentsteer.domains.molecules.oracle_calls.CountedOracle` passes RDKit's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

#: measure(keys, workers) -> one row per key, in order, with a column per property
Measure = Callable[[list[str], int | None], pd.DataFrame]


class BudgetedOracle:
    """An oracle's measures with per-start call counting for one method.

    Args:
        measure: the domain's measuring function, ``(keys, workers) -> DataFrame``.
        columns: the properties it measures (the columns read from its table).
        budget: calls allowed per start.
        n: number of starts.
        cache: measures shared with other methods (key → row), or ``None``.
        workers: processes for the measures (``None``: one per core).
        pool_from: batches smaller than this are measured in the calling process
            (starting a pool of workers costs more than it saves).
    """

    def __init__(
        self,
        measure: Measure,
        columns: Sequence[str],
        budget: int,
        n: int,
        cache: dict[str, dict[str, float]] | None = None,
        workers: int | None = None,
        pool_from: int = 257,
    ) -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise ValueError(f"budget must be an integer >= 0; got {budget!r}")
        self.measure_keys = measure
        self.columns = list(columns)
        self.budget = budget
        self.calls = np.zeros(n, dtype=np.int64)  # (n,) calls each start spent
        self.cache = {} if cache is None else cache
        # per start, the samples asked about, in the order asked
        self.asked: list[dict[str, None]] = [{} for _ in range(n)]
        self.workers = workers
        self.pool_from = pool_from

    def left(self, i: int) -> int:
        """Calls start ``i`` may still spend."""
        return self.budget - int(self.calls[i])

    def measure(self, i: int, keys: Sequence[str]) -> pd.DataFrame:
        """The measures of ``keys`` for start ``i``, charging each new one a call.

        Samples beyond the budget are not measured: their rows are NaN. Returns one row per
        key, in order, with a column per property.
        """
        return self.measure_many({i: keys})[i]

    def measure_many(self, requests: Mapping[int, Sequence[str]]) -> dict[int, pd.DataFrame]:
        """:meth:`measure` for several starts at once (one pool of workers for all):
        start index → its keys."""
        plans = []
        for i, keys in requests.items():
            new = [s for s in dict.fromkeys(keys) if s and s not in self.asked[i]]
            allowed = new[: max(0, self.left(i))]
            self.asked[i].update(dict.fromkeys(allowed))
            self.calls[i] += len(allowed)
            plans.extend(allowed)
        self.fill(plans)
        return {i: self.lookup(s, self.asked[i]) for i, s in requests.items()}

    def fill(self, keys: Sequence[str]) -> None:
        """Measure what the cache lacks (no call is charged here)."""
        todo = [s for s in dict.fromkeys(keys) if s not in self.cache]
        if todo:
            workers = self.workers if len(todo) >= self.pool_from else 1
            table = self.measure_keys(todo, workers)
            for s, row in zip(todo, table[self.columns].to_dict("records"), strict=True):
                self.cache[s] = row

    def lookup(
        self, keys: Sequence[str], allowed: Mapping[str, None] | None = None
    ) -> pd.DataFrame:
        """Cached measures of ``keys`` (NaN rows for samples not measured or not in
        ``allowed``)."""
        empty = dict.fromkeys(self.columns, np.nan)
        rows = [self.cache.get(s, empty) if allowed is None or s in allowed else empty
                for s in keys]  # fmt: skip
        return pd.DataFrame(rows, columns=self.columns, index=range(len(keys)))
