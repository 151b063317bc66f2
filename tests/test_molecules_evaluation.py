"""The molecule evaluation: reconstruction is counted molecule by molecule, and every number
comes from RDKit on decoded molecules."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from molecule_model import SMILES, trained_model
from rdkit import Chem
from rdkit.Chem import QED, Crippen

from latentsteer.domains.molecules.evaluation import evaluate_molecules, reconstruction_table
from latentsteer.domains.molecules.generation import MosesFilters
from latentsteer.train import Dataset

NO_ALERTS = pd.DataFrame({"set": [], "name": [], "smarts": []})


def test_evaluation_counts_what_rdkit_sees():
    model = trained_model()
    x = model.domain.encode_smiles(SMILES)
    mols = [Chem.MolFromSmiles(s) for s in SMILES]
    targets = {"qed": [QED.qed(m) for m in mols], "logp": [Crippen.MolLogP(m) for m in mols]}
    data = Dataset(x, {k: torch.tensor(v, dtype=torch.float32) for k, v in targets.items()})
    reference = model.domain.to_smiles(x)
    result = evaluate_molecules(model, data, reference, reference, MosesFilters(NO_ALERTS),
                                samples=12, seed=0)  # fmt: skip
    m = result.metrics
    decoded = model.domain.to_smiles(model.decode(model.encode(x)))
    assert result.reconstructed == decoded
    want = sum(a == b for a, b in zip(decoded, reference, strict=True)) / len(SMILES)
    assert m["reconstruction"] == pytest.approx(want) and m["test_molecules"] == len(SMILES)
    assert len(result.prior) == 12 and m["prior_samples"] == 12
    valid = [s for s in result.prior if s and Chem.MolFromSmiles(s) is not None]
    assert m["prior_valid"] == pytest.approx(len(valid) / 12)
    novel = set(valid) - set(reference)
    assert m["prior_novel"] == pytest.approx(len(novel) / len(set(valid)))
    # The training molecules as a generator: all valid and distinct, no novelty row.
    assert m["training_valid"] == 1.0 and m["training_unique"] == 1.0
    assert "training_novel" not in m
    assert {"qed_r2", "qed_mae", "logp_r2", "logp_mae", "prior_fcd", "training_fcd"} <= set(m)


def test_reconstruction_table_marks_exact_pairs():
    table = reconstruction_table(["CCO", "CCN", "CCC"], ["CCO", "CCO", "CCC"], rows=2)
    assert table.exact.tolist() == [True, False] and list(table.columns) == [
        "test", "reconstructed", "exact"
    ]  # fmt: skip
