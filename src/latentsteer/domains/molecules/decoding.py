"""SELFIES strings → canonical SMILES, in worker processes when there are many.

Decoding SELFIES is pure Python (about 1 ms a molecule), and steering decodes tens of
thousands of candidate rows, so large batches are split over a joblib (loky) pool, which
needs no ``__main__`` guard and so works from any script.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

#: Below this many strings one process decodes them (a pool costs more than it saves).
POOL_FROM = 4000
CHUNK = 2000
#: Strings remembered across calls: steering's later rounds decode many of the rows its
#: earlier rounds (and its other thresholds) decoded. Past this many the memory starts over.
REMEMBER = 500_000
_DECODED: dict[str, str] = {}


def _decode(strings: Sequence[str]) -> list[str]:
    import selfies as sf
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    out = []
    for s in strings:
        smiles = sf.decoder(s) if s else ""
        mol = Chem.MolFromSmiles(smiles) if smiles else None
        out.append(Chem.MolToSmiles(mol) if mol is not None else "")
    return out


def selfies_to_smiles(strings: Sequence[str], workers: int | None = None) -> list[str]:
    """Canonical SMILES of each SELFIES string (``""`` for an empty string or a molecule RDKit
    cannot read), in order; a string is decoded once per process (up to ``REMEMBER``).

    Args:
        workers: processes (``None``: one per core, for batches of ``POOL_FROM`` or more).
    """
    distinct = [s for s in dict.fromkeys(strings) if s not in _DECODED]
    n_jobs = workers or (os.cpu_count() or 1)
    if n_jobs == 1 or len(distinct) < POOL_FROM:
        decoded = _decode(distinct)
    else:
        from joblib import Parallel, delayed

        chunks = [distinct[i : i + CHUNK] for i in range(0, len(distinct), CHUNK)]
        parts = Parallel(n_jobs=n_jobs, backend="loky")(delayed(_decode)(c) for c in chunks)
        decoded = [s for part in parts for s in part]
    fresh = dict(zip(distinct, decoded, strict=True))
    out = [fresh[s] if s in fresh else _DECODED[s] for s in strings]
    if len(fresh) <= REMEMBER:  # a batch larger than the memory is not kept at all
        if len(_DECODED) + len(fresh) > REMEMBER:
            _DECODED.clear()
        _DECODED.update(fresh)
    return out
