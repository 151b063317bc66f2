"""MOSES molecules (Polykovskiy et al. 2020) from the ``molsets==0.3.1`` wheel, verified.

The wheel ships the dataset's CSVs. It is fetched with ``pip download --no-deps`` and read as
a zip: the package is never installed or imported (its pins, e.g. an old numpy, are not
ours). The wheel's SHA-256 is checked before it is opened, and each CSV member's SHA-256
before it is parsed, so a changed file on the index can never become training data.

Splits written by :func:`download`:

* ``train`` — a seeded subset of MOSES train (``train_size`` molecules);
* ``val`` — another seeded, disjoint subset of MOSES train (``val_size``);
* ``test`` — the MOSES test split, whole, or ``test_size`` molecules drawn from it (seeded).

Every SMILES is canonicalised with RDKit; the ones RDKit cannot read are counted and
reported (``download.json``), never silently kept.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from latentsteer.atomic import atomic_dir, write_json, write_table
from latentsteer.errors import DataSourceError
from latentsteer.wheels import fetch_wheel

REQUIREMENT = "molsets==0.3.1"
WHEEL_SHA256 = "7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34"
#: split → (zip member, SHA-256 of the member, rows)
MEMBERS = {
    "train": (
        "moses/dataset/data/train.csv.gz",
        "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c",
        1_584_663,
    ),
    "test": (
        "moses/dataset/data/test.csv.gz",
        "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2",
        176_074,
    ),
}

#: filter set → (zip member, SHA-256): the substructure alerts of the MOSES filters
FILTERS = {
    "mcf": (
        "moses/metrics/mcf.csv",
        "f4a2bfacb4cb8877295eb2a4b4e61ec9770a26388f1331e5dc9c193d22dd5f89",
    ),
    "pains": (
        "moses/metrics/wehi_pains.csv",
        "d762e5420ec70f06d7e41d336cae6f67e2feb0eddf05c6171192a332726d296f",
    ),
}


@dataclass(frozen=True)
class MosesConfig:
    """Where MOSES comes from and how much of it (mirrors ``params.yaml: molecules.data``)."""

    train_size: int = 100_000  # molecules drawn from MOSES train for training
    val_size: int = 10_000  # further molecules drawn from MOSES train, disjoint from train
    test_size: int | None = None  # N drawn (seeded) from the MOSES test split (null = all)
    seed: int = 0  # seeds the draws
    wheel: str | None = None  # a local copy of the wheel instead of pip download
    index_url: str | None = None  # another package index for pip download

    def __post_init__(self) -> None:
        for key in ("train_size", "val_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"molecules.data.{key} must be a positive integer; got {value!r}")
        if self.train_size + self.val_size > MEMBERS["train"][2]:
            raise ValueError(
                f"molecules.data.train_size + val_size must be at most {MEMBERS['train'][2]}"
            )
        if self.test_size is not None and not 1 <= self.test_size <= MEMBERS["test"][2]:
            raise ValueError(
                f"molecules.data.test_size must be from 1 to {MEMBERS['test'][2]} or null; "
                f"got {self.test_size!r}"
            )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_verified(wheel: Path, member: str, sha: str) -> bytes:
    """One member of the wheel, after checking the wheel's and the member's SHA-256.

    Raises:
        DataSourceError: the wheel or the member is not the published one, or unreadable.
    """
    data = wheel.read_bytes()
    if _sha256(data) != WHEEL_SHA256:
        raise DataSourceError(
            f"{wheel.name} has SHA-256 {_sha256(data)[:16]}…, not the published "
            f"{WHEEL_SHA256[:16]}… of {REQUIREMENT}; refusing to read it"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            raw = zf.read(member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataSourceError(f"{wheel.name}: cannot read {member} ({exc})") from None
    if _sha256(raw) != sha:
        raise DataSourceError(f"{wheel.name}: {member} is not the published file (SHA-256)")
    return raw


def read_member(wheel: Path, split: str) -> list[str]:
    """The SMILES of one MOSES split, read out of the wheel after both hash checks.

    Raises:
        DataSourceError: the wheel or the member is not the published one, or unreadable.
    """
    member, sha, rows = MEMBERS[split]
    raw = _read_verified(wheel, member, sha)
    reader = csv.DictReader(io.StringIO(gzip.decompress(raw).decode()))
    smiles = [row["SMILES"] for row in reader]
    if len(smiles) != rows:
        raise DataSourceError(f"{member} holds {len(smiles)} rows, expected {rows}")
    return smiles


def read_filters(wheel: Path) -> pd.DataFrame:
    """The MOSES filters' substructure alerts (``set``: mcf or pains, ``name``, ``smarts``),
    read out of the wheel after both hash checks."""
    rows = []
    for name, (member, sha) in FILTERS.items():
        text = _read_verified(wheel, member, sha).decode()
        reader = csv.reader(io.StringIO(text))
        if name == "mcf":  # header names,smarts
            rows += [(name, label, smarts) for label, smarts in list(reader)[1:]]
        else:  # no header: smarts, "<regId=label>"
            rows += [(name, label.strip(), smarts.strip()) for smarts, label in reader]
    return pd.DataFrame(rows, columns=["set", "name", "smarts"])


def canonical(smiles: list[str]) -> tuple[list[str | None], int]:
    """RDKit's canonical SMILES of each input (``None`` where RDKit cannot read it).

    Returns:
        ``(canonical, failed)``: one entry per input, and how many failed.
    """
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # failures are counted and reported, not printed
    out: list[str | None] = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        out.append(None if mol is None else Chem.MolToSmiles(mol))
    return out, sum(c is None for c in out)


def download(
    cfg: MosesConfig,
    out_dir: str | os.PathLike[str],
    filters_out: str | os.PathLike[str] | None = None,
) -> dict[str, object]:
    """Fetch, verify, split and canonicalise MOSES into ``out_dir/{train,val,test}.parquet``.

    Each table has ``source`` (the index in its MOSES split), ``smiles`` (MOSES's string) and
    ``canonical`` (RDKit's). ``download.json`` reports counts and failures. The folder is
    written atomically: an interrupted run leaves the previous one. ``filters_out``, when
    given, receives the MOSES filters' alerts (:func:`read_filters`) as CSV, also atomically.

    Returns:
        The report written to ``download.json``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch_wheel(REQUIREMENT, Path(tmp), cfg.wheel, cfg.index_url, "molecules.data")
        moses = {split: read_member(wheel, split) for split in MEMBERS}
        alerts = read_filters(wheel) if filters_out is not None else None
    # One seeded permutation of MOSES train: its head is train, the next val (disjoint).
    picked = np.random.default_rng(cfg.seed).permutation(len(moses["train"]))
    picked = picked[: cfg.train_size + cfg.val_size]
    sources = {
        "train": picked[: cfg.train_size],
        "val": picked[cfg.train_size :],
        # A seeded draw, not the file's head: the MOSES test file is ordered (its first
        # and second 4 000 molecules lie 3.3 apart in FCD), so a head would be a biased
        # reference for the distribution metrics.
        "test": np.sort(
            np.random.default_rng([cfg.seed, 1]).permutation(len(moses["test"]))[
                : cfg.test_size or len(moses["test"])
            ]
        ),
    }
    report: dict[str, object] = {"source": REQUIREMENT, "wheel_sha256": WHEEL_SHA256}
    with atomic_dir(out_dir) as folder:
        for split, idx in sources.items():
            pool = moses["test" if split == "test" else "train"]
            smiles = [pool[i] for i in idx]
            canon, failed = canonical(smiles)
            table = pd.DataFrame({"source": idx.astype(np.int64), "smiles": smiles,
                                  "canonical": canon})  # fmt: skip
            table.to_parquet(folder / f"{split}.parquet", index=False)
            report[split] = {"molecules": len(table), "rdkit_failed": failed}
        write_json(report, folder / "download.json")
    if alerts is not None:
        write_table(alerts, filters_out)
    return report
