"""User errors are one line; bugs keep their traceback (the rule in latentsteer.errors)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import latentsteer.stage
from latentsteer.cli import main
from latentsteer.domains.mnist import morphometry
from latentsteer.domains.mnist.morphometry import MorphometryConfig, as_image_batch
from latentsteer.errors import (
    ConfigError,
    DataSourceError,
    LatentsteerError,
    is_user_error,
    run_reporting,
)


def raised(action) -> BaseException:
    try:
        action()
    except BaseException as exc:  # whatever was raised, for the test to inspect
        return exc
    raise AssertionError("nothing was raised")


def numpy_value_error() -> None:
    np.reshape(np.zeros(3), (2, 2))  # ValueError raised inside numpy: a bug of ours upstream


@pytest.mark.parametrize(
    ("action", "user"),
    [
        (lambda: MorphometryConfig(threshold=2.0), True),  # validation: `raise` in the package
        (lambda: as_image_batch(np.zeros(784)), True),
        (lambda: (_ for _ in ()).throw(ConfigError("bad key")), True),
        (lambda: (_ for _ in ()).throw(DataSourceError("offline")), True),
        (numpy_value_error, False),
        # numpy raises on a line of ours that is not a `raise`: still a bug.
        (lambda: as_image_batch([[[0, 1]], [[0]]]), False),
        (lambda: {}["missing"], False),
        (lambda: (_ for _ in ()).throw(AssertionError("invariant")), False),
    ],
    ids=[
        "config-validation",
        "image-validation",
        "config-error",
        "data-source-error",
        "numpy-valueerror",
        "valueerror-on-non-raise-line",
        "keyerror",
        "assertion",
    ],
)
def test_is_user_error(action, user):
    assert is_user_error(raised(action)) is user


def test_value_error_raised_elsewhere_counts_only_as_own_code(tmp_path):
    def validate():
        raise ValueError("bad value")

    exc = raised(validate)
    assert not is_user_error(exc)  # tests/ is not the package
    assert not is_user_error(exc, own_code=[tmp_path])
    assert is_user_error(exc, own_code=[tmp_path, Path(__file__).parent])


def test_user_error_is_one_line_exit_1(capsys):
    def fail():
        raise LatentsteerError("input.npy does not exist")

    assert run_reporting("latentsteer measure", fail) == 1
    assert capsys.readouterr().err == "latentsteer measure: error: input.npy does not exist\n"


def test_validation_value_error_from_the_cli_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), np.uint8))
    out = tmp_path / "m.csv"
    args = ["measure", str(tmp_path / "x.npy"), "--out", str(out)]
    assert main([*args, "--threshold", "2"]) == 1
    err = capsys.readouterr().err
    assert err == "latentsteer measure: error: threshold must be in (0, 1); got 2.0\n"
    assert main([*args, "--workers", "0"]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("workers must be a positive integer or None; got 0")
    )
    assert not out.exists()


def test_internal_value_error_keeps_its_traceback_in_process(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), np.uint8))
    monkeypatch.setattr(morphometry, "measure", lambda *a, **k: numpy_value_error())
    with pytest.raises(ValueError, match="cannot reshape") as info:
        main(["measure", str(tmp_path / "x.npy"), "--out", str(tmp_path / "m.csv")])
    assert any("likely bug" in note for note in info.value.__notes__)


def test_internal_value_error_prints_traceback_from_the_command(tmp_path):
    """The real command: a numpy ValueError deep inside prints its traceback, not one line."""
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), np.uint8))
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from latentsteer.cli import main
        from latentsteer.domains.mnist import morphometry
        morphometry.measure = lambda *a, **k: np.reshape(np.zeros(3), (2, 2))
        sys.exit(main(["measure", {str(tmp_path / "x.npy")!r}, "--out", "m.csv"]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("Traceback (most recent call last):")
    assert "numpy" in proc.stderr and "fromnumeric.py" in proc.stderr  # where it came from
    assert "ValueError: cannot reshape array of size 3 into shape (2,2)" in proc.stderr
    assert "likely bug; please report it" in proc.stderr
    assert "latentsteer measure: error:" not in proc.stderr
    assert not (tmp_path / "m.csv").exists()


def test_other_exceptions_propagate_unchanged():
    with pytest.raises(KeyError):
        run_reporting("x", lambda: {}["missing"])
    exc = raised(lambda: run_reporting("x", lambda: {}["missing"]))
    assert not getattr(exc, "__notes__", None)  # only ValueErrors get the note


def test_debug_env_prints_traceback_of_user_errors(monkeypatch, capsys):
    monkeypatch.setenv("LATENTSTEER_DEBUG", "1")
    assert run_reporting("x", lambda: MorphometryConfig(scale=0)) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith(
        "x: error: scale must be an integer from 1 to 16; got 0\n"
    )


def test_stage_counts_its_script_folder_as_own_code(monkeypatch, capsys):
    """A ValueError raised by a stage script (pipeline/) is a user error; numpy's is a bug."""
    monkeypatch.setattr(latentsteer.stage, "load_params", lambda path: {})

    def body(params):
        raise ValueError("params.yaml: experiments and groups are empty; nothing to report")

    with pytest.raises(SystemExit) as info:
        latentsteer.stage.run_stage("report", body)
    assert info.value.code == 1
    assert capsys.readouterr().err == (
        "report: error: params.yaml: experiments and groups are empty; nothing to report\n"
    )
    with pytest.raises(ValueError, match="cannot reshape"):
        latentsteer.stage.run_stage("report", lambda params: numpy_value_error())


def test_ctrl_c_is_one_line_exit_130(capsys):
    def interrupt():
        raise KeyboardInterrupt

    assert run_reporting("labels", interrupt) == 130
    assert capsys.readouterr().err == "labels: interrupted; no partial output was kept\n"
