"""The molecules a steering run starts from (:class:`MoleculeStarts`), read from SMILES."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from latentsteer.domains.molecules.measures import RDKIT, MoleculeMeasures
from latentsteer.model import MultiHeadVAE


@dataclass
class MoleculeStarts:
    """Starting molecules.

    Attributes:
        inputs: the SMILES as given (what ``molecules.csv`` calls ``start``).
        smiles: their canonical SMILES.
        tokens: ``(n, L)`` their token rows in the model's vocabulary.
        values: the certifying measures of each, one row per start: RDKit's
            (``properties.COLUMNS``) and the fitted properties' certifiers.
        guide_values: the same as the in-loop oracle reads them (the fitted properties'
            guides in place of their certifiers): what candidates are compared with while
            steering; ``None`` when they are ``values`` (RDKit alone).
    """

    inputs: list[str]
    smiles: list[str]
    tokens: torch.Tensor
    values: pd.DataFrame
    guide_values: pd.DataFrame | None = None

    @property
    def loop_values(self) -> pd.DataFrame:
        """What the in-loop oracle reads of the starts."""
        return self.values if self.guide_values is None else self.guide_values

    def first(self, k: int) -> MoleculeStarts:
        """The first ``k`` starts."""
        guide = None if self.guide_values is None else self.guide_values.iloc[:k].reset_index(
            drop=True)  # fmt: skip
        return MoleculeStarts(self.inputs[:k], self.smiles[:k], self.tokens[:k],
                              self.values.iloc[:k].reset_index(drop=True), guide)  # fmt: skip


def read_starts(
    model: MultiHeadVAE, smiles: list[str], names: list[str] | None = None,
    measures: MoleculeMeasures = RDKIT,
) -> MoleculeStarts:  # fmt: skip
    """Starts from SMILES; a molecule the model cannot read is one error naming it.

    Raises:
        ValueError: no molecules, or one that does not parse, is several fragments, has a
            token outside the vocabulary or is too long (``names`` say which).
    """
    if not smiles:
        raise ValueError("no starting molecules given")
    tokens = model.domain.encode_smiles(smiles, names)  # type: ignore[attr-defined]
    values = measures.measure(list(smiles), workers=1, role="certifier")
    columns = list(measures.columns)
    guide = None
    if measures.learned:
        guide = values[columns].reset_index(drop=True).copy()
        read = measures.of_role(values.canonical.fillna("").tolist(), "guide")
        for name in read.columns:
            guide[name] = read[name].to_numpy()
    return MoleculeStarts(list(smiles), values.canonical.tolist(), tokens,
                          values[columns].reset_index(drop=True), guide)  # fmt: skip
