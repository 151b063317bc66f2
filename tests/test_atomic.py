"""Atomic writes: an error mid-write leaves the previous output intact and no temp files."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest

from latentsteer.atomic import (
    atomic_dir,
    atomic_file,
    check_writable,
    write_json,
    write_table,
)
from latentsteer.errors import LatentsteerError


def test_failed_file_write_keeps_old_content(tmp_path):
    target = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert pd.read_parquet(target)["a"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_interrupted_dir_write_keeps_old_dir(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("v1")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("v2-partial")
        raise KeyboardInterrupt
    assert (target / "a.txt").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_dir_write_replaces_whole_dir(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "old.txt").write_text("x")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("y")
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_write_table_and_json(tmp_path):
    write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv")
    assert pd.read_csv(tmp_path / "t.csv")["a"].tolist() == [1, 2]
    write_json({"b": 1, "a": 2}, tmp_path / "m.json")
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    with pytest.raises(ValueError, match="must end in .parquet or .csv"):
        write_table(pd.DataFrame(), tmp_path / "t.xlsx")


def test_outputs_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_json({}, tmp_path / "m.json")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def _refuses_writes(folder) -> bool:
    """Whether the OS refuses new entries in ``folder`` (root ignores a read-only mode)."""
    try:
        (folder / "probe").mkdir()
    except OSError:
        return True
    (folder / "probe").rmdir()
    return False


def test_check_writable_accepts_a_new_or_existing_folder_and_leaves_no_trace(tmp_path):
    (tmp_path / "there").mkdir()
    check_writable(tmp_path / "a" / "b" / "new")  # made later by the writer
    check_writable(tmp_path / "there")
    check_writable(tmp_path / "there", whole=True)
    check_writable(None)  # no output asked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"]
    assert not any((tmp_path / "there").iterdir())


def test_check_writable_refuses_a_folder_no_one_can_write():
    # /proc accepts no new entries, not even root's: the one case root cannot write.
    with pytest.raises(LatentsteerError) as err:
        check_writable("/proc/x")
    assert str(err.value).startswith("cannot write /proc/x: the folder /proc ")
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(LatentsteerError, match="the folder /proc does not accept new entries"):
        check_writable("/proc/deeper/still/x", whole=True)


@pytest.mark.parametrize("whole", [False, True])
def test_check_writable_refuses_a_read_only_folder(tmp_path, whole):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if not _refuses_writes(ro):
            pytest.skip("this user (root) writes into read-only folders; /proc is tested instead")
        with pytest.raises(
            LatentsteerError, match=re.escape(f"cannot write {ro / 'out'}: the folder {ro} ")
        ):
            check_writable(ro / "out", whole=whole)
    finally:
        ro.chmod(0o755)


def test_check_writable_on_an_existing_folder_looks_where_the_writer_writes(tmp_path):
    ro = tmp_path / "ro"
    (ro / "out").mkdir(parents=True)
    ro.chmod(0o555)
    try:
        if not _refuses_writes(ro):
            pytest.skip("this user (root) writes into read-only folders")
        check_writable(ro / "out")  # files are written inside out: fine
        with pytest.raises(LatentsteerError, match=re.escape(f"the folder {ro} does not accept")):
            check_writable(ro / "out", whole=True)  # out is replaced from ro: refused
    finally:
        ro.chmod(0o755)


def test_check_writable_refuses_a_file_or_a_path_under_one(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    with pytest.raises(LatentsteerError, match=re.escape(f"--out {taken} is an existing file")):
        check_writable(taken)
    for under in (taken / "x", taken / "x" / "y"):
        with pytest.raises(LatentsteerError, match=re.escape(f"{under}: {taken} is a file")):
            check_writable(under, whole=True)
    assert taken.read_text() == "keep me"
