"""RDKit drawings of steering paths: each start, the molecules its method found on the way,
and its result, labelled with RDKit's measures and the similarity to the start."""

from __future__ import annotations

import os

from latentsteer.domains.molecules.drawing import CELL


def draw_path_grid(
    starts: list[str],
    paths: list[list[str]],
    results: list[str],
    properties: list[str],
    path: str | os.PathLike[str],
    steps: int = 3,
) -> None:
    """One row per start: the start, up to ``steps`` molecules of its path (evenly spaced),
    and the result; each labelled with RDKit's measures of ``properties`` and its
    similarity to the start."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Draw

    from latentsteer.domains.molecules.properties import measure_one
    from latentsteer.domains.molecules.similarity import similarity

    RDLogger.DisableLog("rdApp.*")
    mols, legends = [], []
    for start, way, result in zip(starts, paths, results, strict=True):
        middle = [m for m in way if m != result]
        if len(middle) > steps:
            middle = [middle[round(k * (len(middle) - 1) / (steps - 1))] for k in range(steps)]
        row = [start, *middle, *[""] * (steps - len(middle)), result]
        for k, s in enumerate(row):
            mol = Chem.MolFromSmiles(s) if s else None
            if mol is None:
                mols.append(Chem.Mol())
                legends.append("")
                continue
            m = measure_one(s)
            text = "  ".join(f"{p} {m[p]:.2f}" for p in properties[:2] if m.get(p) is not None)
            tag = "start" if k == 0 else "result" if k == len(row) - 1 else "path"
            mols.append(mol)
            legends.append(f"{tag}: {text}  sim {similarity(start, s):.2f}")
    image = Draw.MolsToGridImage(
        mols, molsPerRow=steps + 2, subImgSize=(CELL, CELL), legends=legends
    )
    image.save(os.fspath(path), format="PNG")
