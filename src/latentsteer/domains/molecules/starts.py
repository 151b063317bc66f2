"""The molecules a steering run starts from (:class:`MoleculeStarts`), read from SMILES."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from latentsteer.domains.molecules.properties import COLUMNS, measure_molecules
from latentsteer.model import MultiHeadVAE


@dataclass
class MoleculeStarts:
    """Starting molecules.

    Attributes:
        inputs: the SMILES as given (what ``molecules.csv`` calls ``start``).
        smiles: their canonical SMILES.
        tokens: ``(n, L)`` their token rows in the model's vocabulary.
        values: RDKit's measures of each, one row per start (``properties.COLUMNS``).
    """

    inputs: list[str]
    smiles: list[str]
    tokens: torch.Tensor
    values: pd.DataFrame

    def first(self, k: int) -> MoleculeStarts:
        """The first ``k`` starts."""
        return MoleculeStarts(self.inputs[:k], self.smiles[:k], self.tokens[:k],
                              self.values.iloc[:k].reset_index(drop=True))  # fmt: skip


def read_starts(
    model: MultiHeadVAE, smiles: list[str], names: list[str] | None = None
) -> MoleculeStarts:
    """Starts from SMILES; a molecule the model cannot read is one error naming it.

    Raises:
        ValueError: no molecules, or one that does not parse, is several fragments, has a
            token outside the vocabulary or is too long (``names`` say which).
    """
    if not smiles:
        raise ValueError("no starting molecules given")
    tokens = model.domain.encode_smiles(smiles, names)  # type: ignore[attr-defined]
    values = measure_molecules(list(smiles), workers=1, progress=False)
    return MoleculeStarts(list(smiles), values.canonical.tolist(), tokens,
                          values[list(COLUMNS)].reset_index(drop=True))  # fmt: skip
