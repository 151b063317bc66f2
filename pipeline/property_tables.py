"""Stage `property_tables`: a user-style table of training digits and a measure the heads lack.

Writes ``data/properties/<column>.npz``: the first ``rows`` training digits (``images``,
uint8) and their Morpho-MNIST ``column`` measure (default ``area``, px²), the table a user
would bring to ``fit-property``.
``data/labels/train.parquet`` holds one row per training image, its ``index`` column being
the image's position in ``data/raw/train.npz``; rows are matched by that column, and a
labels file that does not cover the digits (or disagrees on their digit) stops the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentsteer.config import section
from latentsteer.domains.mnist.datasets import load_split
from latentsteer.domains.mnist.property_table import write_image_table
from latentsteer.stage import run_stage

RAW = "data/raw"
LABELS = "data/labels/train.parquet"
OUT = "data/properties"


@dataclass(frozen=True)
class PropertyTablesConfig:
    """params.yaml: property_tables."""

    rows: int = 5000  # the first N training digits
    column: str = "area"  # the Morpho-MNIST measure they are labelled with

    def __post_init__(self) -> None:
        from latentsteer.domains.mnist.morphometry import MEASURES

        if not isinstance(self.rows, int) or self.rows < 1:
            raise ValueError(f"property_tables.rows must be a positive integer; got {self.rows!r}")
        if self.column not in MEASURES:
            raise ValueError(f"property_tables.column must be one of {', '.join(MEASURES)}; "
                             f"got {self.column!r}")  # fmt: skip


def main(params: dict[str, Any]) -> None:
    cfg = section(params, "property_tables", PropertyTablesConfig)
    images, digits = load_split(RAW, "train")
    if cfg.rows > len(images):
        raise ValueError(f"property_tables.rows is {cfg.rows}; {RAW}/train.npz holds "
                         f"{len(images)} digits")  # fmt: skip
    labels = pd.read_parquet(LABELS, columns=["index", "digit", cfg.column]).set_index("index")
    wanted = np.arange(cfg.rows)
    missing = np.setdiff1d(wanted, labels.index.to_numpy())
    if len(missing):
        raise ValueError(f"{LABELS} has no row for training digit {missing[0]} "
                         f"({len(missing)} missing); run `dvc repro labels`")  # fmt: skip
    rows = labels.loc[wanted]
    if not (rows["digit"].to_numpy() == digits[: cfg.rows]).all():
        raise ValueError(f"{LABELS} does not match {RAW}/train.npz (digits differ); "
                         "run `dvc repro labels`")  # fmt: skip
    out = f"{OUT}/{cfg.column}.npz"
    values = rows[cfg.column].to_numpy(np.float64)
    write_image_table(out, images[: cfg.rows], **{cfg.column: values})
    print(f"property_tables: {cfg.rows} training digits with {cfg.column!r} -> {out}")


if __name__ == "__main__":
    run_stage("property_tables", main)
