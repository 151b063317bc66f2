"""A user's table of molecules and one measured property (``latentsteer fit-property``).

The table is CSV or Parquet with a ``smiles`` column (any capitalisation) and the property's
column. Every SMILES is read with RDKit and kept as RDKit's canonical SMILES, so ``OCC`` and
``CCO`` are one molecule (and must agree on the value, :func:`~latentsteer.learned.table.
property_values`). Measured tables often carry counter-ions and solvents (``CCN.Cl``): the
largest fragment (most heavy atoms) is kept and the table counts how many were stripped,
since the models and the VAE read one molecule per row.

Rows are named as a user finds them: ``line N`` is the CSV file's line (the header is line 1,
blank lines counted), ``row N`` the Parquet table's 1-based row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from latentsteer.learned.table import PropertyTable, property_values

SUFFIXES = (".csv", ".parquet")
SMILES = "smiles"


@dataclass
class MoleculeTable(PropertyTable):
    """A :class:`~latentsteer.learned.table.PropertyTable` of molecules.

    Attributes:
        stripped: rows whose SMILES held several fragments (a salt, a solvent) and were
            reduced to their largest fragment.
    """

    stripped: int = 0


def largest_fragment(mol: object) -> tuple[object, bool]:
    """The fragment of an RDKit molecule with the most heavy atoms (ties: the most atoms,
    then the first), and whether there were several."""
    from rdkit import Chem

    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    if len(frags) == 1:
        return mol, False
    best = max(frags, key=lambda f: (f.GetNumHeavyAtoms(), f.GetNumAtoms()))
    return best, True


def parse_molecule(smiles: object) -> tuple[object | None, bool]:
    """The RDKit molecule of the largest fragment of ``smiles`` (``None`` when it is not a
    string, is blank or does not parse), and whether fragments were stripped."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # a failure is reported by the caller, as one line
    if not isinstance(smiles, str) or not smiles.strip():
        return None, False
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None or mol.GetNumAtoms() == 0:
        return None, False
    return largest_fragment(mol)


def canonical_smiles(smiles: object) -> tuple[str | None, bool]:
    """RDKit's canonical SMILES of :func:`parse_molecule`'s molecule (``None`` where it has
    none), and whether fragments were stripped."""
    from rdkit import Chem

    mol, split = parse_molecule(smiles)
    return (None, False) if mol is None else (Chem.MolToSmiles(mol), split)


def _read_frame(p: Path) -> tuple[pd.DataFrame, list[str]]:
    """The file's rows and their names for messages.

    Raises:
        ValueError: a missing file, another format, or a file pandas cannot read (one line).
    """
    suffix = p.suffix.lower()
    if suffix == ".npz":
        raise ValueError(f"{p} is an image table (.npz); molecule models read CSV or Parquet "
                         "with a smiles column")  # fmt: skip
    if suffix not in SUFFIXES:
        raise ValueError(f"{p}: a molecule table must end in {' or '.join(SUFFIXES)} "
                         f"(with a smiles column); got {p.suffix or 'no suffix'!r}")  # fmt: skip
    if not p.is_file():
        raise ValueError(f"{p} is not a file")
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(p)
            return frame.reset_index(drop=True), [f"row {i + 1}" for i in range(len(frame))]
        # Blank lines are read as empty rows and dropped afterwards, so the index still
        # counts every line of the file and messages name the line an editor shows.
        frame = pd.read_csv(p, skip_blank_lines=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError,
            ValueError) as exc:  # fmt: skip
        kind = "Parquet" if suffix == ".parquet" else "CSV"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{p} is not a readable {kind} table ({reason})") from None
    frame = frame[frame.notna().any(axis=1)]
    where = [f"line {i + 2}" for i in frame.index]
    return frame.reset_index(drop=True), where


def _smiles_column(frame: pd.DataFrame, p: Path) -> str:
    """The name of the ``smiles`` column (an exact match first, else any capitalisation)."""
    if SMILES in frame.columns:
        return SMILES
    found = [c for c in frame.columns if str(c).strip().lower() == SMILES]
    if len(found) == 1:
        return found[0]
    columns = ", ".join(map(str, frame.columns)) or "none"
    if found:
        raise ValueError(f"{p}: several smiles columns ({columns}); keep one")
    raise ValueError(f"{p}: no smiles column (columns: {columns}); molecule tables need one "
                     "SMILES per row in a column named smiles")  # fmt: skip


def read_molecule_table(path: str | os.PathLike[str], column: str) -> MoleculeTable:
    """Read and check a table of molecules and their measured ``column``.

    Args:
        path: a ``.csv`` or ``.parquet`` file with a ``smiles`` column.
        column: the property's column.

    Returns:
        The table: ``samples`` the canonical SMILES (``list[str]``, one per distinct
        molecule), ``values (n,)`` float64, ``where`` the rows' names, ``merged`` the exact
        duplicates dropped and ``stripped`` the salts reduced to their largest fragment.

    Raises:
        ValueError: an unreadable file or another format, no smiles column, a SMILES RDKit
            cannot read, or bad values (:func:`~latentsteer.learned.table.property_values`);
            one line naming the file, the row and what is accepted.
    """
    p = Path(path)
    frame, where = _read_frame(p)
    smiles_col = _smiles_column(frame, p)
    keys: list[str] = []
    splits: list[bool] = []
    for i, raw in enumerate(frame[smiles_col].tolist()):
        key, split = canonical_smiles(raw)
        if key is None:
            text = "" if raw is None or (isinstance(raw, float) and raw != raw) else raw
            what = "is empty" if not str(text).strip() else f"{text!r} does not parse as SMILES"
            raise ValueError(f"{p}: {where[i]}: {smiles_col} {what} (RDKit cannot read it)")
        keys.append(key)
        splits.append(split)
    values, keep = property_values(frame, column, keys, where, str(path))
    return MoleculeTable(
        path=str(path),
        column=column,
        samples=[keys[i] for i in keep],
        values=values,
        where=[where[i] for i in keep],
        merged=len(keys) - len(keep),
        stripped=sum(splits[i] for i in keep),
    )
