"""What the molecule domain serves for properties fitted from a user's table
(``MoleculeDomain.property_support``): a CSV or Parquet file of SMILES read and checked
(:mod:`.property_table`), the model adapted where it cannot write the table's molecules
and their codes (:mod:`.adapt`), and a random-forest certifier and a boosted guide as the
learned oracle, with Tanimoto applicability (:mod:`.property_oracle`)."""

import torch

from latentsteer.domains.molecules.adapt import adapt_model, table_codes
from latentsteer.domains.molecules.property_oracle import (
    fit_molecule_oracle as fit_property_oracle,
)
from latentsteer.domains.molecules.property_oracle import (
    load_molecule_oracle as load_property_oracle,
)
from latentsteer.domains.molecules.property_table import (
    read_molecule_table as read_property_table,
)
from latentsteer.model import MultiHeadVAE

__all__ = ["decoded_samples", "adapt_model", "fit_property_oracle", "load_property_oracle",
           "read_property_table", "table_codes"]  # fmt: skip


def decoded_samples(model: MultiHeadVAE, z: torch.Tensor) -> list[str]:
    """What the learned oracle reads of codes ``z (n, d)``: the decoded molecules' SMILES."""
    return model.domain.to_smiles(model.decode(z).cpu())  # type: ignore[attr-defined]
