"""The MOSES metrics of generated molecules, against RDKit computed directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from latentsteer.domains.molecules.generation import (
    MosesFilters,
    generation_metrics,
    internal_diversity,
)

# Two alerts in the download stage's format: an MCF pattern and a made-up PAINS-like one.
ALERTS = pd.DataFrame(
    {"set": ["mcf", "pains"], "name": ["MCF1", "azo"],
     "smarts": ["[#6]=&!@[#6]-[#6]#[#7]", "[#6]-[#7]=[#7]-[#6]"]}
)  # fmt: skip


class ConstantFCD:
    """Stands in for ChemNet where only the bookkeeping around FCD is under test."""

    def precalc(self, smiles):
        return {"n": len(smiles)}

    def metric(self, reference, stats):
        return float(stats["n"])


def test_validity_uniqueness_and_novelty_count_as_defined():
    smiles = ["CCO", "OCC", "C1CC", "", "CC.O", "c1ccccc1", "N"]
    m = generation_metrics(smiles, {"CCO"}, MosesFilters(ALERTS), {}, ConstantFCD())
    assert m.samples == 7
    assert m.valid == pytest.approx(4 / 7)  # CCO, OCC (= CCO), c1ccccc1, N
    assert m.unique == pytest.approx(3 / 4)
    assert m.novel == pytest.approx(2 / 3)  # benzene and ammonia; ethanol is in training
    assert m.fcd == 4.0  # FCD is computed on the valid samples only


def test_internal_diversity_is_one_minus_mean_pairwise_tanimoto():
    mols = [Chem.MolFromSmiles(s) for s in ("CCO", "c1ccccc1O", "CC(=O)Nc1ccccc1")]
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fps = [gen.GetFingerprint(m) for m in mols]
    sims = [DataStructs.TanimotoSimilarity(fps[i], fps[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert internal_diversity(mols) == pytest.approx(1 - np.mean(sims))
    assert internal_diversity(mols[:1]) != internal_diversity(mols[:1])  # NaN for one molecule


@pytest.mark.parametrize(
    "smiles, passes",
    [
        ("CCO", True),
        ("c1ccccc1C(=O)N", True),
        ("C=CC#N", False),  # the MCF1 alert
        ("CN=NC", False),  # the azo alert
        ("CC[N+](C)(C)C", False),  # a charge
        ("CCP", False),  # phosphorus is not an allowed element
        ("C1CCCCCCC1", False),  # a ring of eight
        ("C1CCCCCC1", True),  # seven is allowed
    ],
)
def test_moses_filters(smiles, passes):
    assert MosesFilters(ALERTS).passes(Chem.MolFromSmiles(smiles)) is passes


def test_an_unreadable_alert_is_refused():
    bad = pd.DataFrame({"set": ["mcf"], "name": ["x"], "smarts": ["[#6"]})
    with pytest.raises(ValueError, match="SMARTS pattern RDKit cannot read"):
        MosesFilters(bad)


def test_fcd_is_zero_for_the_same_set_and_grows_with_difference():
    from fcd_torch import FCD

    fcd = FCD(device="cpu", n_jobs=1)
    ring = ["c1ccccc1" + s for s in ("C", "O", "N", "Cl", "F", "CC", "CO", "CN", "C(=O)O", "S")]
    chains = ["C" * k + "O" for k in range(2, 12)]
    reference = fcd.precalc(ring)
    same = generation_metrics(ring, set(), MosesFilters(ALERTS), reference, fcd).fcd
    other = generation_metrics(chains, set(), MosesFilters(ALERTS), reference, fcd).fcd
    assert abs(same) < 1e-3 and other > 1.0
