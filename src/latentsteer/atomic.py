"""Atomic writes: a crash or Ctrl-C never leaves a half-written output behind.

Every output is written to a temporary sibling first and renamed into place only once it is
complete. ``os.replace`` is atomic on one filesystem, and the temporary lives in the target's
own directory to guarantee that. :func:`check_writable` tells, before any work, whether an
output folder can be written at all.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from latentsteer.errors import LatentsteerError


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block succeeds.

    The temporary keeps ``path``'s suffix, so libraries that choose a format by suffix (or
    append one, like ``numpy.savez``) see the right one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal modes
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory to fill; it replaces the directory ``path`` on success.

    An existing ``path`` is moved aside first and removed only after the new one is in
    place, so at every instant either the old or the new complete directory exists.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    old: Path | None = None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if target.exists():
            old = target.with_name(f".{target.name}.{os.getpid()}.old")
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def check_writable(out: str | os.PathLike[str] | None, *, whole: bool = False) -> None:
    """Fail at once, before any work, when the output folder ``out`` cannot be written.

    The nearest existing folder on the way to ``out`` (``out`` itself when it exists) must
    accept a new entry: a probe folder is made there and removed, which asks the filesystem
    itself (permissions alone do not tell: root ignores them, ``/proc`` refuses everyone).
    Nothing else is created.

    Args:
        out: the output folder; ``None`` (no output asked) checks nothing.
        whole: ``out`` is replaced as a whole (:func:`atomic_dir`), so the folder holding it
            must accept the new entry rather than ``out`` itself.

    Raises:
        LatentsteerError: ``out`` is an existing file, or lies under one, or its folder does
            not accept new entries (one line naming the folder and why).
    """
    if out is None:
        return
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise LatentsteerError(f"--out {out} is an existing file; give a folder")
    folder = target.absolute()
    if whole or not folder.exists():
        folder = folder.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise LatentsteerError(f"cannot write {out}: {folder} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".latentsteer-probe-"))
    except OSError as exc:
        raise LatentsteerError(
            f"cannot write {out}: the folder {folder} does not accept new entries "
            f"({exc.strerror or exc})"
        ) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a DataFrame atomically as ``.parquet`` or ``.csv``, chosen by the suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"output must end in .parquet or .csv; got {Path(path).name!r}")
    with atomic_file(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write JSON atomically, indented and with sorted keys so diffs stay readable."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
