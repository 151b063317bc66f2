"""Molecule data and labels: MOSES verification, canonical SMILES, RDKit properties."""

from __future__ import annotations

import gzip
import hashlib
import zipfile

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors, rdMolDescriptors

from latentsteer.domains.molecules import moses
from latentsteer.domains.molecules.properties import measure_molecules, measure_one
from latentsteer.errors import DataSourceError


def fake_wheel(tmp_path, rows: list[str], member: str = moses.MEMBERS["test"][0]):
    """A zip holding one MOSES-like CSV member; returns its path and the member's bytes."""
    raw = gzip.compress(("SMILES\n" + "\n".join(rows) + "\n").encode())
    path = tmp_path / "molsets-0.3.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, raw)
    return path, raw


def test_a_wheel_that_is_not_the_published_one_is_refused(tmp_path):
    path, _ = fake_wheel(tmp_path, ["CCO"])
    with pytest.raises(DataSourceError, match=r"not the published .* refusing to read it"):
        moses.read_member(path, "test")


def test_each_member_is_checked_before_it_is_parsed(tmp_path, monkeypatch):
    path, raw = fake_wheel(tmp_path, ["CCO", "c1ccccc1"])
    # The wheel passes (its hash declared published here); the member does not.
    monkeypatch.setattr(moses, "WHEEL_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(DataSourceError, match="is not the published file"):
        moses.read_member(path, "test")
    # With the member's hash and row count declared too, it reads in order.
    member = moses.MEMBERS["test"][0]
    monkeypatch.setitem(moses.MEMBERS, "test", (member, hashlib.sha256(raw).hexdigest(), 2))
    assert moses.read_member(path, "test") == ["CCO", "c1ccccc1"]
    monkeypatch.setitem(moses.MEMBERS, "test", (member, hashlib.sha256(raw).hexdigest(), 3))
    with pytest.raises(DataSourceError, match="holds 2 rows, expected 3"):
        moses.read_member(path, "test")


def test_a_missing_local_wheel_is_one_line(tmp_path):
    cfg = moses.MosesConfig(wheel=str(tmp_path / "nowhere.whl"))
    with pytest.raises(DataSourceError, match=r"molecules.data.wheel .*nowhere.whl.* not exist"):
        moses.download(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_size": 0}, "molecules.data.train_size must be a positive integer"),
        ({"val_size": -1}, "molecules.data.val_size must be a positive integer"),
        ({"train_size": 1_584_000, "val_size": 1000}, "train_size \\+ val_size must be at most"),
        ({"test_size": 0}, "molecules.data.test_size must be from 1 to 176074"),
    ],
)
def test_bad_data_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        moses.MosesConfig(**kwargs)


def test_canonical_smiles_and_failures_are_counted():
    canon, failed = moses.canonical(["OCC", "C1=CC=CC=C1", "not a molecule", "C(C)(C)(C)(C)C"])
    assert canon[:2] == ["CCO", "c1ccccc1"]
    assert canon[2] is None and canon[3] is None  # pentavalent carbon: RDKit refuses it
    assert failed == 2


def test_properties_are_rdkits_own():
    smiles = ["CC(=O)Oc1ccccc1C(=O)O", "C1CCCCCCC1", "CCN(CC)CC"]  # aspirin, cyclooctane, ...
    table = measure_molecules(smiles, workers=1, progress=False)
    for row, s in zip(table.itertuples(), smiles, strict=True):
        mol = Chem.MolFromSmiles(s)
        assert row.valid and row.canonical == Chem.MolToSmiles(mol)
        assert row.qed == pytest.approx(QED.qed(mol), abs=1e-12)
        assert row.logp == pytest.approx(Crippen.MolLogP(mol), abs=1e-12)
        assert row.mw == pytest.approx(Descriptors.MolWt(mol), abs=1e-9)
        assert row.tpsa == pytest.approx(rdMolDescriptors.CalcTPSA(mol), abs=1e-9)
        assert row.heavy_atoms == mol.GetNumHeavyAtoms()
    # Penalized logP in raw units: logP − SA − max(0, largest ring − 6).
    octane = table.iloc[1]
    assert octane.plogp == pytest.approx(octane.logp - octane.sa - 2.0, abs=1e-12)
    aspirin = table.iloc[0]
    assert aspirin.plogp == pytest.approx(aspirin.logp - aspirin.sa, abs=1e-12)
    assert 1.0 <= aspirin.sa <= 10.0 and aspirin.rings == 1
    assert table.selfies[0].startswith("[C]")


def test_bad_lines_are_rows_marked_invalid_never_a_crash():
    table = measure_molecules(["CCO", "nonsense(", "", "CCO.O"], workers=1, progress=False)
    assert table.valid.tolist() == [True, False, False, False]  # two fragments: not one molecule
    assert table.loc[1:, ["qed", "logp", "plogp"]].isna().all().all()
    assert table.canonical[1:].isna().all()


def test_workers_give_the_same_table_in_the_same_order():
    rng = np.random.default_rng(0)
    pool = ["CCO", "c1ccccc1O", "CC(=O)N", "C1CCNCC1", "CCOC(=O)C", "bad"]
    smiles = [pool[i] for i in rng.integers(0, len(pool), 1100)]  # more than two chunks
    one = measure_molecules(smiles, workers=1, progress=False)
    two = measure_molecules(smiles, workers=2, progress=False)
    assert one.equals(two)
    assert one.valid.sum() == sum(s != "bad" for s in smiles)


@pytest.mark.parametrize("workers", [0, -1])
def test_bad_worker_counts_are_one_line(workers):
    with pytest.raises(
        ValueError, match=f"workers must be a positive integer or None; got {workers}"
    ):
        measure_molecules(["CCO"], workers=workers, progress=False)


def test_measure_one_row_has_every_column():
    row = measure_one("CCO")
    assert set(row) == {"valid", "canonical", "selfies", "qed", "logp", "sa", "plogp", "mw",
                        "tpsa", "rings", "heavy_atoms"}  # fmt: skip
