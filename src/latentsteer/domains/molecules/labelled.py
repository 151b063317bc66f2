"""Molecules as token rows joined with their RDKit labels, as the molecule stages read them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentsteer.domains.molecules.vocabulary import Vocabulary
from latentsteer.errors import DataSourceError
from latentsteer.model import HeadSpec
from latentsteer.train import Dataset


def read_molecule_labels(labels_dir: str | os.PathLike[str], split: str) -> pd.DataFrame:
    """The ``molecules_labels`` table of ``split``.

    Raises:
        DataSourceError: missing or damaged (one line saying which stage rebuilds it).
    """
    path = Path(labels_dir) / f"{split}.parquet"
    if not path.is_file():
        raise DataSourceError(f"{path} not found; run `dvc repro molecules_labels` first")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataSourceError(
            f"{path} is damaged ({exc}); run `dvc repro -f molecules_labels`"
        ) from None


@dataclass
class LabelledMolecules:
    """A split as a model of ``vocabulary`` sees it.

    Attributes:
        data: token rows ``(n, L)`` (float32) and one ``(n,)`` target per head.
        table: the label rows of those molecules (same order).
        dropped: molecules of the split the vocabulary cannot encode (a token it lacks, or
            longer than its length), or without SELFIES or labels.
    """

    data: Dataset
    table: pd.DataFrame
    dropped: int


def load_molecules(
    labels_dir: str | os.PathLike[str],
    split: str,
    heads: tuple[HeadSpec, ...],
    vocabulary: Vocabulary,
    limit: int | None = None,
) -> LabelledMolecules:
    """The molecules of ``split`` that ``vocabulary`` encodes, with their head targets.

    Raises:
        DataSourceError: missing or damaged labels, or a head whose column is not a label.
    """
    table = read_molecule_labels(labels_dir, split)
    for h in heads:
        if h.column not in table.columns or h.kind != "regression":
            raise DataSourceError(
                f"head {h.name!r}: molecule heads are regressions on a label column; "
                f"available: {', '.join(c for c in table.columns if table[c].dtype == float)}"
            )
    keep = table.valid.to_numpy() & table.selfies.notna().to_numpy()
    for h in heads:
        keep &= table[h.column].notna().to_numpy()
    fits = vocabulary.fits(table.selfies.where(keep, ""))
    keep &= fits
    idx = np.flatnonzero(keep)[:limit] if limit else np.flatnonzero(keep)
    rows = table.iloc[idx].reset_index(drop=True)
    x = torch.as_tensor(vocabulary.encode(list(rows.selfies)), dtype=torch.float32)
    targets = {h.name: torch.tensor(rows[h.column].to_numpy(), dtype=torch.float32) for h in heads}
    return LabelledMolecules(Dataset(x, targets), rows, int(len(table) - keep.sum()))
