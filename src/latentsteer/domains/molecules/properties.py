"""RDKit measures of molecules: the labels the heads learn and the oracle that grades them.

Per molecule (one row each, in input order):

=================  ===============================================================
``valid``           RDKit parsed and sanitised it, as one fragment
``canonical``       RDKit's canonical SMILES
``selfies``         its SELFIES string (every SELFIES string decodes to a molecule)
``qed``             drug-likeness, :func:`rdkit.Chem.QED.qed` (0–1)
``logp``            Crippen logP
``sa``              synthetic accessibility (Ertl & Schuffenhauer 2009), RDKit Contrib's
                    ``sascorer`` (1 easy – 10 hard)
``plogp``           penalized logP in raw units: ``logp − sa − max(0, largest ring − 6)``
                    (the definition of the constrained-optimisation tables, no ZINC
                    standardisation)
``mw``              molecular weight (Da)
``tpsa``            topological polar surface area (Å²)
``rings``           ring count
``heavy_atoms``     heavy-atom count
=================  ===============================================================

A line that does not parse gets ``valid = False`` and empty values, never an exception: a
user's file is measured whole and the bad lines are reported by number.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd

COLUMNS = ("qed", "logp", "sa", "plogp", "mw", "tpsa", "rings", "heavy_atoms")
CHUNK = 512  # molecules per worker task


def _sascorer():
    """RDKit Contrib's SA scorer (shipped in the rdkit wheel, not importable by default)."""
    from rdkit.Chem import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer  # type: ignore[import-not-found]

    return sascorer


def measure_one(smiles: str) -> dict[str, object]:
    """The row of one SMILES (see the module docstring)."""
    import selfies
    from rdkit import Chem, RDLogger
    from rdkit.Chem import QED, Crippen, Descriptors, rdMolDescriptors

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None or len(Chem.GetMolFrags(mol)) != 1:
        return {"valid": False, "canonical": None, "selfies": None, **dict.fromkeys(COLUMNS)}
    canonical = Chem.MolToSmiles(mol)
    logp = Crippen.MolLogP(mol)
    sa = _sascorer().calculateScore(mol)
    largest = max((len(r) for r in mol.GetRingInfo().AtomRings()), default=0)
    try:
        encoded = selfies.encoder(canonical)
    except selfies.EncoderError:
        encoded = None  # RDKit reads it, SELFIES cannot write it (e.g. odd valences)
    return {
        "valid": True,
        "canonical": canonical,
        "selfies": encoded,
        "qed": QED.qed(mol),
        "logp": logp,
        "sa": sa,
        "plogp": logp - sa - max(0, largest - 6),
        "mw": Descriptors.MolWt(mol),
        "tpsa": rdMolDescriptors.CalcTPSA(mol),
        "rings": rdMolDescriptors.CalcNumRings(mol),
        "heavy_atoms": mol.GetNumHeavyAtoms(),
    }


def _measure_chunk(chunk: list[str]) -> list[dict[str, object]]:
    return [measure_one(s) for s in chunk]


def measure_molecules(
    smiles: list[str], workers: int | None = None, progress: bool = True
) -> pd.DataFrame:
    """Measure every SMILES; rows in input order (see the module docstring).

    Args:
        smiles: the molecules.
        workers: processes (joblib's loky pool: no ``__main__`` guard needed); ``None`` uses
            every core for more than one chunk, 1 measures in this process.
        progress: show a progress bar.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None; got {workers!r}")
    chunks = [list(smiles[i : i + CHUNK]) for i in range(0, len(smiles), CHUNK)]
    n_jobs = workers or (os.cpu_count() or 1)
    bar = tqdm(total=len(smiles), desc="measure", unit="mol", disable=not progress)
    rows: list[dict[str, object]] = []
    if n_jobs == 1 or len(chunks) <= 1:
        for chunk in chunks:
            rows += _measure_chunk(chunk)
            bar.update(len(chunk))
    else:
        run = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")
        for part in run(delayed(_measure_chunk)(c) for c in chunks):
            rows += part
            bar.update(len(part))
    bar.close()
    table = pd.DataFrame(rows, columns=["valid", "canonical", "selfies", *COLUMNS])
    table["valid"] = table["valid"].astype(bool)
    for col in COLUMNS:
        table[col] = table[col].astype(np.float64)
    return table
