"""MNIST images joined with their Morpho-MNIST labels, as the training stages read them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentsteer.domains.mnist.datasets import load_split
from latentsteer.errors import DataSourceError
from latentsteer.model import HeadSpec
from latentsteer.train import Dataset


def read_labels(labels_dir: str | os.PathLike[str], split: str) -> pd.DataFrame:
    path = Path(labels_dir) / f"{split}.parquet"
    if not path.is_file():
        raise DataSourceError(f"{path} not found; run `dvc repro labels` first")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataSourceError(f"{path} is damaged ({exc}); run `dvc repro -f labels`") from None


def load_labelled(
    raw_dir: str | os.PathLike[str],
    labels_dir: str | os.PathLike[str],
    split: str,
    heads: tuple[HeadSpec, ...],
    limit: int | None = None,
) -> Dataset:
    """Images of ``split`` with one target per head.

    Rows with a NaN label in a column a head learns from (blank images have no thickness)
    are dropped, so no loss ever sees a NaN.

    Raises:
        DataSourceError: missing or damaged inputs, or a head whose column is not a label.
    """
    images, digits = load_split(raw_dir, split)
    table = read_labels(labels_dir, split)
    if len(table) != len(images) or not np.array_equal(table["digit"].to_numpy(), digits):
        raise DataSourceError(
            f"{labels_dir}/{split}.parquet does not match {raw_dir}/{split}.npz; "
            "run `dvc repro labels`"
        )
    for h in heads:
        if h.column not in table.columns:
            raise DataSourceError(
                f"head {h.name!r} learns from column {h.column!r}, which the labels do not "
                f"have; available: {', '.join(c for c in table.columns if c != 'index')}"
            )
    keep = np.ones(len(table), dtype=bool)
    for h in heads:
        keep &= table[h.column].notna().to_numpy()
    idx = np.flatnonzero(keep)[:limit] if limit else np.flatnonzero(keep)
    targets = {}
    for h in heads:
        col = table[h.column].to_numpy()[idx]
        targets[h.name] = (
            torch.as_tensor(col, dtype=torch.int64)
            if h.kind == "class"
            else torch.as_tensor(col, dtype=torch.float32)
        )
    x = torch.as_tensor(images[idx], dtype=torch.float32) / 255.0
    return Dataset(x, targets)
