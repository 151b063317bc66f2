"""A user's table of digit images and measured properties: an ``.npz`` read and checked.

The file holds an ``images`` array ``(n, 28, 28)`` (uint8 0-255, or floats in [0, 1]) and one
1-D array of ``n`` values per property, named after the property (``height``). It is always
read with ``allow_pickle=False``: a file we did not write can at worst be refused, never run
code. Rows are named ``index i`` (their position in the arrays) in messages; two rows are the
same sample when their images are equal pixel for pixel (a digest of the float32 image, so a
uint8 table and its float copy name the same samples alike).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from latentsteer.atomic import atomic_file
from latentsteer.learned.table import PropertyTable, property_values

if TYPE_CHECKING:
    import torch

    from latentsteer.model import MultiHeadVAE

SIDE = 28  # pixels per side
IMAGES = "images"  # the array of images in a table file
MOLECULE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".smi", ".smiles")


def _digest(image: np.ndarray) -> str:
    """A row's identity: a digest of its float32 ``(28, 28)`` image's bytes."""
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).hexdigest()


def _hint(wanted: str, names: list[str]) -> str:
    """``; did you mean 'X'?`` when a name differs from ``wanted`` only in case, else ``''``."""
    near = [n for n in names if n.lower() == wanted.lower()]
    return f"; did you mean {near[0]!r}?" if near else ""


def _as_unit_images(arr: np.ndarray, path: str) -> np.ndarray:
    """The ``images`` array as float32 ``(n, 28, 28)`` in [0, 1].

    Raises:
        ValueError: another shape, another dtype, or floats outside [0, 1] or not finite.
    """
    if arr.ndim != 3 or arr.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"{path}: {IMAGES!r} has shape {arr.shape}; expected (n, 28, 28)")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{path}: {IMAGES!r} has dtype {arr.dtype}; expected uint8 (0-255) "
                         "or floats in [0, 1]")  # fmt: skip
    bad = ~np.isfinite(arr).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"{path}: {IMAGES!r} has NaN or infinite pixels ({int(bad.sum())} "
                         f"images; first index {int(np.flatnonzero(bad)[0])})")  # fmt: skip
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"{path}: {IMAGES!r} are floats in [{arr.min():g}, {arr.max():g}]; "
                         "expected [0, 1] (divide 0-255 data by 255)")  # fmt: skip
    return arr.astype(np.float32)


def _member(data: np.lib.npyio.NpzFile, key: str, path: str) -> np.ndarray:
    """One array of an ``.npz``; object arrays are refused, never unpickled."""
    try:
        return data[key]  # members load lazily: an object array fails here
    except ValueError:
        raise ValueError(f"{path}: array {key!r} holds Python objects (pickled), not numbers; "
                         "save numeric arrays with numpy.savez") from None  # fmt: skip
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path}: array {key!r} is damaged ({exc})") from None


def read_image_table(path: str | os.PathLike[str], column: str) -> PropertyTable:
    """Read and check a table of images and one measured property.

    Args:
        path: an ``.npz`` with ``images (n, 28, 28)`` (uint8, or floats in [0, 1]) and a 1-D
            array of ``n`` values named ``column``.
        column: the property's array.

    Returns:
        The table: ``samples`` float32 ``(m, 28, 28)`` in [0, 1], ``values (m,)``, ``where``
        ``index i``, exact duplicates merged (``m <= n``).

    Raises:
        ValueError: a missing or unreadable file, a molecule table, pickled arrays, missing
            arrays (with the arrays there are), bad images, a property array of another shape
            or length, or the checks of :func:`~latentsteer.learned.table.property_values`
            (one line each).
    """
    shown = str(path)
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in MOLECULE_SUFFIXES:
        raise ValueError(f"{shown} is a molecule table; image models read an .npz with an "
                         f"{IMAGES} array and one array per property")  # fmt: skip
    if not p.is_file():
        raise ValueError(f"{shown} does not exist" if not p.exists() else f"{shown} is not a file")
    if suffix != ".npz":
        raise ValueError(f"{shown}: image models read an .npz with an {IMAGES} array and one "
                         "array per property")  # fmt: skip
    try:
        loaded = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{shown} is not a readable .npz file ({str(exc)[:200]})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{shown} holds a single array, not an .npz archive of named arrays")
    with loaded:
        names = list(loaded.keys())
        listed = ", ".join(names) or "none"
        if IMAGES not in names:
            raise ValueError(f"{shown}: no array {IMAGES!r}{_hint(IMAGES, names)} "
                             f"(arrays: {listed})")  # fmt: skip
        if column not in names:
            raise ValueError(f"{shown}: no array {column!r}{_hint(column, names)} "
                             f"(arrays: {listed})")  # fmt: skip
        images = _as_unit_images(_member(loaded, IMAGES, shown), shown)
        raw = _member(loaded, column, shown)
    n = len(images)
    if raw.ndim != 1 or len(raw) != n:
        raise ValueError(f"{shown}: array {column!r} has shape {raw.shape}; expected ({n},), "
                         f"one value per image")  # fmt: skip
    where = [f"index {i}" for i in range(n)]
    keys = [_digest(img) for img in images]
    values, keep = property_values(pd.DataFrame({column: raw}), column, keys, where, shown)
    return PropertyTable(shown, column, images[keep], values, [where[i] for i in keep],
                         merged=n - len(keep))  # fmt: skip


def table_codes(
    model: MultiHeadVAE, table: PropertyTable
) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """The posterior means of every table image: every 28×28 image encodes.

    Returns:
        ``codes (n, d)`` on the model's device, ``kept (n,)`` all row indices, and no
        refusals (``[]``).
    """
    codes = model.encode(table.samples)
    return codes, np.arange(len(table), dtype=np.int64), []


def write_image_table(
    path: str | os.PathLike[str], images: np.ndarray, /, **columns: np.ndarray
) -> None:
    """Write a table :func:`read_image_table` reads, atomically (compressed ``.npz``).

    Args:
        path: the ``.npz`` to write.
        images: ``(n, 28, 28)`` uint8, or floats in [0, 1]; stored as given.
        columns: one 1-D array of ``n`` numbers per property, by name.

    Raises:
        ValueError: not an ``.npz`` path, bad images, a column named ``images``, or a column
            of another shape (one line).
    """
    if Path(path).suffix.lower() != ".npz":
        raise ValueError(f"a property table is an .npz file; got {Path(path).name!r}")
    arr = np.asarray(images)
    _as_unit_images(arr, str(path))  # refuse now what the reader would refuse later
    arrays = {IMAGES: arr}
    for name, col in columns.items():
        values = np.asarray(col)
        if name == IMAGES:
            raise ValueError(f"a property cannot be named {IMAGES!r}: that array is the images")
        if values.shape != (len(arr),):
            raise ValueError(f"property {name!r} has shape {values.shape}; expected "
                             f"({len(arr)},), one value per image")  # fmt: skip
        arrays[name] = values
    with atomic_file(path) as tmp:
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
