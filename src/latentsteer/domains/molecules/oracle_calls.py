"""RDKit as the oracle of molecule steering, behind the engine's budget
(:class:`latentsteer.budget.BudgetedOracle`): one call is one distinct molecule RDKit
measures for one start and one method, keyed by its canonical SMILES."""

from __future__ import annotations

import pandas as pd

from latentsteer.budget import BudgetedOracle
from latentsteer.domains.molecules.measures import RDKIT, MoleculeMeasures


class CountedOracle(BudgetedOracle):
    """RDKit's measures (``properties.COLUMNS``) and the fitted properties' guides, with
    per-start call counting.

    Args:
        budget: calls allowed per start.
        n: number of starts.
        cache: measures shared with other methods (canonical SMILES → row), or ``None``.
        workers: processes for RDKit (``None``: one per core).
        measures: what a call reads (RDKit, and the learned properties' guides).
    """

    def __init__(
        self,
        budget: int,
        n: int,
        cache: dict[str, dict[str, float]] | None = None,
        workers: int | None = None,
        measures: MoleculeMeasures = RDKIT,
    ) -> None:
        self.measures = measures

        def read(smiles: list[str], workers: int | None) -> pd.DataFrame:
            return measures.measure(smiles, workers, "guide")

        super().__init__(read, measures.columns, budget, n, cache, workers)
