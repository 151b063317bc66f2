"""RDKit as the oracle of molecule steering, behind the engine's budget
(:class:`latentsteer.budget.BudgetedOracle`): one call is one distinct molecule RDKit
measures for one start and one method, keyed by its canonical SMILES."""

from __future__ import annotations

import pandas as pd

from latentsteer.budget import BudgetedOracle
from latentsteer.domains.molecules.properties import COLUMNS, measure_molecules


def _rdkit(smiles: list[str], workers: int | None) -> pd.DataFrame:
    return measure_molecules(smiles, workers=workers, progress=False)


class CountedOracle(BudgetedOracle):
    """RDKit's measures (``properties.COLUMNS``) with per-start call counting.

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
        super().__init__(_rdkit, COLUMNS, budget, n, cache, workers)
