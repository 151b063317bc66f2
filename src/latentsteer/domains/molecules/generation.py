"""How good a set of generated molecules is, measured with RDKit and ChemNet (the MOSES metrics).

==============  ================================================================================
``valid``        share of the samples RDKit parses and sanitises as one molecule (one fragment)
``unique``       share of distinct canonical SMILES among the valid ones
``novel``        share of the distinct valid molecules that are not in the training set
``int_div``      internal diversity: 1 − mean Tanimoto similarity over all pairs of distinct
                 valid molecules (Morgan fingerprints, radius 2, 1 024 bits)
``filters``      share of the valid molecules that pass the MOSES filters (:class:`MosesFilters`)
``fcd``          Fréchet ChemNet Distance between the valid samples and a reference set
                 (``fcd-torch``, whose ChemNet weights ship inside its wheel)
==============  ================================================================================

FCD depends on the sizes of both sets (the covariances are estimated from them), so
:func:`generation_metrics` is always paired, in the evaluation, with the FCD of as many
training molecules against the same reference: the floor a perfect generator would reach.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

FP_RADIUS, FP_BITS = 2, 1024
# The MOSES filters' other rules: only these elements, no charges, no ring of 8 or more atoms.
ALLOWED_ELEMENTS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
LARGEST_RING = 7


class MosesFilters:
    """The MOSES filters: substructure alerts (MCF and PAINS, from the download stage's
    ``filters.csv``) and the element, charge and ring-size rules above."""

    def __init__(self, alerts: pd.DataFrame) -> None:
        from rdkit import Chem

        self.alerts = [Chem.MolFromSmarts(s) for s in alerts.smarts]
        if any(a is None for a in self.alerts):
            raise ValueError("filters.csv holds a SMARTS pattern RDKit cannot read")

    def passes(self, mol) -> bool:  # noqa: ANN001 (an RDKit Mol)
        """Whether one RDKit molecule passes every rule."""
        from rdkit import Chem

        if any(len(ring) > LARGEST_RING for ring in mol.GetRingInfo().AtomRings()):
            return False
        atoms = list(mol.GetAtoms())
        if any(a.GetFormalCharge() != 0 or a.GetSymbol() not in ALLOWED_ELEMENTS for a in atoms):
            return False
        with_h = Chem.AddHs(mol)  # some alerts name hydrogens explicitly
        return not any(with_h.HasSubstructMatch(a) for a in self.alerts)


def parse_valid(smiles: list[str]) -> list[object | None]:
    """RDKit molecules of ``smiles`` (``None`` where invalid or in several fragments)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    out = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if s else None
        out.append(mol if mol is not None and len(Chem.GetMolFrags(mol)) == 1 else None)
    return out


def internal_diversity(mols: list[object]) -> float:
    """1 − mean Tanimoto similarity over all pairs of distinct molecules."""
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    if len(mols) < 2:
        return float("nan")
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    fps = [gen.GetFingerprint(m) for m in mols]
    total = 0.0
    for i in range(1, len(fps)):
        total += float(np.sum(DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])))
    pairs = len(fps) * (len(fps) - 1) / 2
    return 1.0 - total / pairs


@dataclass
class GenerationMetrics:
    """The metrics of the module docstring, and how many samples they came from."""

    samples: int
    valid: float
    unique: float
    novel: float
    int_div: float
    filters: float
    fcd: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def generation_metrics(
    smiles: list[str],
    training: set[str],
    filters: MosesFilters,
    fcd_reference: dict[str, np.ndarray],
    fcd: object,
) -> GenerationMetrics:
    """Measure generated ``smiles``.

    Args:
        training: canonical SMILES of the training set, for novelty.
        fcd_reference: the reference set's ChemNet statistics (``fcd.precalc``).
        fcd: an ``fcd_torch.FCD`` (ChemNet loaded once for every set).
    """
    from rdkit import Chem

    mols = parse_valid(smiles)
    valid = [m for m in mols if m is not None]
    canonical = [Chem.MolToSmiles(m) for m in valid]
    distinct = dict(zip(canonical, valid, strict=True))  # first molecule of each SMILES
    n_valid = max(len(valid), 1)
    stats = fcd.precalc(canonical) if len(canonical) > 1 else {}  # type: ignore[attr-defined]
    return GenerationMetrics(
        samples=len(smiles),
        valid=len(valid) / max(len(smiles), 1),
        unique=len(distinct) / n_valid,
        novel=sum(s not in training for s in distinct) / max(len(distinct), 1),
        int_div=internal_diversity(list(distinct.values())),
        filters=sum(filters.passes(m) for m in valid) / n_valid,
        fcd=float(fcd.metric(fcd_reference, stats)) if stats else float("nan"),  # type: ignore[attr-defined]
    )
