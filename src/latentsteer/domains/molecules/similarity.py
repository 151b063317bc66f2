"""Tanimoto similarity between molecules: the constraint of similarity-constrained steering.

Morgan fingerprints of radius 2 folded to 2 048 bits (the common choice of the published
constrained-optimisation tables; JT-VAE's own code used unfolded count fingerprints, which
disagree at δ = 0.4 on about a quarter of close pairs). Computing a similarity is not an
oracle call: it reads no property, only the two structures, so every method may check it
before spending its budget (see :mod:`.oracle_calls`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

FP_RADIUS, FP_BITS = 2, 2048


@lru_cache(maxsize=1)
def _generator():
    from rdkit import RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    return rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)


# Steering asks for the same molecules' fingerprints again and again (every round re-grades
# what each start has measured so far); parsing dominated the stage's profile. Fingerprints
# are only ever read, so one object may serve every caller.
@lru_cache(maxsize=200_000)
def _fingerprint(smiles: str) -> object | None:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles) if smiles else None
    return _generator().GetFingerprint(mol) if mol is not None else None


def fingerprints(smiles: Sequence[str]) -> list[object | None]:
    """Morgan bit vectors of ``smiles`` (``None`` where a SMILES does not parse)."""
    _generator()  # quiets RDKit's parser before the first parse
    return [_fingerprint(s) if isinstance(s, str) else None for s in smiles]


def tanimoto(reference: object, others: Sequence[object | None]) -> np.ndarray:
    """``(len(others),)`` Tanimoto similarities of fingerprints to one ``reference``
    fingerprint; 0 for a missing fingerprint (an unparsable molecule is similar to nothing)."""
    from rdkit import DataStructs

    out = np.zeros(len(others))
    present = [i for i, fp in enumerate(others) if fp is not None]
    if reference is not None and present:
        if len(present) == len(others):  # the usual case: no filtered copy of a long list
            whole = others if isinstance(others, list) else list(others)
            out[:] = DataStructs.BulkTanimotoSimilarity(reference, whole)
        else:
            sims = DataStructs.BulkTanimotoSimilarity(reference, [others[i] for i in present])
            out[present] = sims
    return out


def similarity(a: str, b: str) -> float:
    """Tanimoto similarity of two SMILES (0 when either does not parse)."""
    fa, fb = fingerprints([a, b])
    return float(tanimoto(fa, [fb])[0])
