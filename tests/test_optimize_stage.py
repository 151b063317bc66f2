"""pipeline/optimize.py's command line: which entries it runs, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[1] / "pipeline" / "optimize.py"
ENTRY = {"goals": ["digit=3"], "start": "random:4"}


def stage(tmp_path: Path, params: dict, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the stage script in an empty folder: every case here fails before any model loads."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=tmp_path, capture_output=True, text=True
    )


PARAMS = {
    "optimize": {"reference": 10, "knn_codes": 10},
    "experiments": {"three": ENTRY},
    "groups": {"digits": {"d3": ENTRY, "d4": {**ENTRY, "goals": ["digit=4"]}}},
}


@pytest.mark.parametrize(
    ("args", "edit", "message"),
    [
        (["nine"], None,
         "optimize@nine: error: params.yaml: no experiment 'nine' under experiments; "
         "there are three"),
        (["--group", "odd"], None,
         "group@odd: error: params.yaml: no group 'odd' under groups; there are digits"),
        (["--group", "digits"], ("d4", {**ENTRY, "steps": 0}),
         "group@digits: error: params.yaml: groups.digits.d4: steps must be a positive integer; "
         "got 0"),
        (["--group", "digits"], ("d4", {**ENTRY, "stepz": 3}),
         "group@digits: error: params.yaml: unknown key groups.digits.d4.stepz; accepted: "
         "bounds, box"),
        (["--group", "empty"], None,
         "group@empty: error: params.yaml: groups.empty must map member names to experiment "
         "entries"),
        ([], None,
         "optimize@?: error: usage: python pipeline/optimize.py EXPERIMENT | --group GROUP"),
    ],
)  # fmt: skip
def test_bad_selection_is_one_line(tmp_path, args, edit, message):
    params = yaml.safe_load(yaml.safe_dump(PARAMS))
    params["groups"]["empty"] = {}
    if edit:
        params["groups"]["digits"][edit[0]] = edit[1]
    proc = stage(tmp_path, params, *args)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()  # nothing written, nothing half-written


def test_members_pick_the_entries_and_their_folders():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import optimize  # the stage script, as a module
    finally:
        sys.path.pop(0)
    assert optimize.members(PARAMS, ["three"]) == (
        "experiments", {"three": ENTRY}, Path("results"),
    )  # fmt: skip
    prefix, entries, folder = optimize.members(PARAMS, ["--group", "digits"])
    assert prefix == "groups.digits" and list(entries) == ["d3", "d4"]
    assert folder == Path("results/digits")
    assert optimize.stage_name(["--group", "digits"]) == "group@digits"
    assert optimize.stage_name(["three"]) == "optimize@three"
