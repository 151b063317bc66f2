"""RDKit drawings of molecules in a grid, each labelled with its measured QED and logP."""

from __future__ import annotations

import os

CELL = 220  # pixels per molecule


def draw_grid(smiles: list[str], cols: int, path: str | os.PathLike[str]) -> None:
    """Draw ``smiles`` row by row, ``cols`` per row, into the PNG ``path``.

    An empty or unparsable entry is an empty cell labelled ``invalid``; the labels are RDKit's
    measures of the drawn molecule, never a model's prediction.
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem import QED, Crippen, Draw

    RDLogger.DisableLog("rdApp.*")
    mols, legends = [], []
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if s else None
        if mol is None:
            mols.append(Chem.Mol())
            legends.append("invalid" if s else "")
        else:
            mols.append(mol)
            legends.append(f"QED {QED.qed(mol):.2f}  logP {Crippen.MolLogP(mol):.2f}")
    image = Draw.MolsToGridImage(
        mols, molsPerRow=max(1, cols), subImgSize=(CELL, CELL), legends=legends
    )
    image.save(os.fspath(path), format="PNG")
