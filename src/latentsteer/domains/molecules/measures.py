"""What a molecule's oracle reads: RDKit's properties, and the model's fitted properties.

A model with properties fitted from the user's tables (``latentsteer fit-property``) has a
learned oracle for each (:mod:`latentsteer.learned`). :class:`MoleculeMeasures` reads both
kinds for a batch of SMILES in one table, in a *role*: steering (the budgeted in-loop oracle,
the baselines) reads the learned **guides**, certification the learned **certifiers**, so
no learned model certifies what it steered. A learned reading outside its oracle's
applicability domain is NaN: such a molecule meets no goal on that property (unverifiable),
and ``applicability_<name>`` says how far out it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from latentsteer.domains.molecules.properties import COLUMNS, measure_molecules
from latentsteer.learned.attach import learned_readings
from latentsteer.learned.card import PropertyOracle, Role


class MoleculeMeasures:
    """RDKit's measures and the learned properties' readings.

    Args:
        learned: the fitted properties' oracles, by name (none: RDKit alone).
    """

    def __init__(self, learned: Mapping[str, PropertyOracle] | None = None) -> None:
        self.learned = dict(learned or {})
        self.columns: tuple[str, ...] = (*COLUMNS, *self.learned)

    def describe(self, role: Role) -> str:
        """The learned oracles read in ``role``, for ``metrics.json`` ("" without any)."""
        return "; ".join(o.card.describe(role) for o in self.learned.values())

    def measure(
        self, smiles: Sequence[str], workers: int | None = None, role: Role = "certifier"
    ) -> pd.DataFrame:
        """One row per SMILES, in order: :func:`~.properties.measure_molecules`' columns,
        then per learned property its reading in ``role`` (NaN outside the applicability
        domain or for an unparsable molecule) and ``applicability_<name>``."""
        table = measure_molecules(list(smiles), workers=workers, progress=False)
        if self.learned:
            canonical = [c if isinstance(c, str) else "" for c in table.canonical]
            values, applicability = learned_readings(self.learned, canonical, role)
            for name in self.learned:
                table[name] = values[name].to_numpy()
                table[f"applicability_{name}"] = applicability[name].to_numpy()
        return table

    def of_role(self, smiles: Sequence[str], role: Role) -> pd.DataFrame:
        """The learned properties' readings alone (``n`` rows, one column each)."""
        canonical = list(smiles)
        return learned_readings(self.learned, canonical, role)[0]


#: RDKit alone: a model with no fitted properties.
RDKIT = MoleculeMeasures()
