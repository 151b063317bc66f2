"""A user's table of samples and one measured property, checked before anything is fitted.

A domain reads its own file formats (molecules: CSV or Parquet with a ``smiles`` column;
images: an ``.npz`` with ``images`` and one array per property) into a :class:`PropertyTable`
with :func:`property_values`, which applies the checks every domain shares: the column
exists, its values are numbers, none is missing, duplicates agree, and there are enough rows
for a held-out split and cross-validation. Every failure is one line naming the file, the
column and the first offending row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Rows a fit needs: 5-fold cross-validation and a held-out fifth for the head leave about
#: 24 rows to learn from at this size; fewer gives errors nobody should trust.
MIN_ROWS = 30


@dataclass
class PropertyTable:
    """Samples and their measured values.

    Attributes:
        path: the file, as given.
        column: the property's column in it.
        samples: the domain's samples, one per row (molecules: canonical SMILES, a
            ``list[str]``; images: an ``(n, 28, 28)`` float32 array in [0, 1]).
        values: ``(n,)`` float64 measured values.
        where: ``n`` row names for messages (``line 12``, ``index 5``).
        merged: rows dropped as exact duplicates (same sample, same value).
    """

    path: str
    column: str
    samples: object
    values: np.ndarray
    where: list[str]
    merged: int = 0

    def __len__(self) -> int:
        return len(self.values)

    def subset(self, index: np.ndarray) -> PropertyTable:
        """The rows ``index (m,)`` (samples indexed as the domain holds them)."""
        samples = self.samples
        picked = [samples[i] for i in index] if isinstance(samples, list) else samples[index]
        return PropertyTable(self.path, self.column, picked, self.values[index],
                             [self.where[i] for i in index], self.merged)  # fmt: skip


def property_values(
    frame: pd.DataFrame,
    column: str,
    keys: Sequence[str],
    where: Sequence[str],
    path: str,
    min_rows: int = MIN_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """The checked values of ``column``, and which rows to keep (exact duplicates merged).

    Args:
        frame: the table, one row per sample.
        column: the property's column.
        keys: one identity per row (a canonical SMILES, an image digest): rows with the same
            key are the same sample.
        where: row names for messages.
        path: the file, for messages.
        min_rows: rows the fit needs after merging duplicates.

    Returns:
        ``values (n,)`` float64 and ``keep (m,)`` the row indices kept, in order.

    Raises:
        ValueError: a missing column (with the columns there are), a non-numeric or missing
            value, duplicates with conflicting values, or too few rows (one line each).
    """
    if column not in frame.columns:
        near = [c for c in frame.columns if str(c).lower() == column.lower()]
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"{path}: no column {column!r}{hint} (columns: "
                         f"{', '.join(map(str, frame.columns))})")  # fmt: skip
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values) & raw.notna().to_numpy())
    if len(bad):
        i = bad[0]
        raise ValueError(f"{path}: column {column!r} has non-numeric values ({len(bad)} rows; "
                         f"first {where[i]}: {raw.iloc[i]!r})")  # fmt: skip
    missing = np.flatnonzero(~np.isfinite(values))
    if len(missing):
        raise ValueError(f"{path}: column {column!r} has missing or infinite values "
                         f"({len(missing)} rows; first {where[missing[0]]})")  # fmt: skip
    first: dict[str, int] = {}
    keep = []
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        if j == i:
            keep.append(i)
        elif values[j] != values[i]:
            both = f"{values[j]:g} and {values[i]:g}"
            raise ValueError(f"{path}: {where[j]} and {where[i]} are the same sample with "
                             f"different {column!r} values ({both})")  # fmt: skip
    if len(keep) < min_rows:
        raise ValueError(f"{path}: {len(keep)} distinct samples with a {column!r} value; the fit "
                         f"needs at least {min_rows}")  # fmt: skip
    index = np.asarray(keep, dtype=np.int64)
    return values[index], index
