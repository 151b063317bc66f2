"""`latentsteer measure` and `latentsteer sample` on molecules, with their one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest
from molecule_model import trained_model
from rdkit import Chem

from latentsteer.cli import main
from latentsteer.model import save_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("molecules") / "vae"
    save_model(trained_model(), folder)
    return folder


def test_measure_keeps_every_line_and_names_the_bad_ones(tmp_path, capsys):
    src = tmp_path / "mols.smi"
    src.write_text("CCO ethanol\n\n# a comment\nc1ccccc1O\nnot_a_smiles\nCC.O\n")
    out = tmp_path / "props.csv"
    assert main(["measure", str(src), "--out", str(out), "--workers", "1"]) == 0
    table = pd.read_csv(out)
    assert table.line.tolist() == [1, 4, 5, 6]
    assert table.valid.tolist() == [True, True, False, False]
    assert table.canonical[1] == "Oc1ccccc1" and table.qed.isna().tolist()[2:] == [True, True]
    err = capsys.readouterr().err
    assert "lines 5 and 6 of mols.smi did not parse as one molecule (valid = false)" in err


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "holds no molecules"),
        ("\n# only a comment\n", "holds no molecules"),
        (b"\x89PNG\r\n\x1a\n\xff\xfe", "is not a text file of SMILES"),
    ],
)
def test_measure_errors_are_one_line_and_write_nothing(tmp_path, capsys, content, message):
    src = tmp_path / "mols.smi"
    src.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "props.csv"
    assert main(["measure", str(src), "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not out.exists()


def test_sample_writes_smiles_of_valid_molecules(model_dir, tmp_path):
    out = tmp_path / "samples.smi"
    assert main(["sample", "--model", str(model_dir), "-n", "7", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 7
    assert all(Chem.MolFromSmiles(s) is not None for s in lines if s)
    png = tmp_path / "samples.png"
    assert main(["sample", "--model", str(model_dir), "-n", "4", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_to_an_unknown_format_is_one_line(model_dir, tmp_path, capsys):
    out = tmp_path / "samples.txt"
    assert main(["sample", "--model", str(model_dir), "-n", "3", "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert "--out must end in .smi or .png for a molecules model" in err and not out.exists()


def test_measure_with_an_unknown_domain_lists_the_known_ones(tmp_path, capsys):
    src = tmp_path / "mols.smi"
    src.write_text("CCO\n")
    out = tmp_path / "props.csv"
    assert main(["measure", str(src), "--domain", "proteins", "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert "unknown domain 'proteins'; known: mnist, molecules" in err and not out.exists()


def test_the_file_suffix_picks_the_domain_and_molecules_plug_in_by_entry_point(tmp_path):
    from importlib.metadata import entry_points

    from latentsteer.registry import BUILT_IN, domain_for_file

    assert domain_for_file("mols.smi").name == "molecules"
    assert domain_for_file("MOLS.SMILES").name == "molecules"
    assert domain_for_file("digits.npz").name == "mnist"
    assert domain_for_file(tmp_path).name == "mnist"  # a folder of PNGs
    # Installed like a user's plug-in would be, not hard-wired into the engine.
    assert "molecules" not in BUILT_IN
    assert "molecules" in {e.name for e in entry_points(group="latentsteer.domains")}


@pytest.mark.parametrize("where", ["/proc/x", "read-only"])
def test_steer_to_a_folder_it_cannot_write_fails_before_steering(
    model_dir, tmp_path, capsys, monkeypatch, where
):
    from latentsteer import steer
    from latentsteer.domains.molecules import context
    from latentsteer.errors import LatentsteerError

    def never(*args, **kwargs):
        raise AssertionError("steered before --out was checked")

    monkeypatch.setattr(context, "steer_molecules", never)
    if where == "read-only":
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            (folder / "probe").mkdir()
        except OSError:
            pass
        else:
            folder.chmod(0o755)
            pytest.skip("this user (root) writes into read-only folders; /proc/x is tested")
        out = folder / "out"
    else:
        folder, out = "/proc", "/proc/x"
    try:
        code = main(["steer", "--model", str(model_dir), "--goal", "qed=max", "--start",
                     "random:2", "--out", str(out)])  # fmt: skip
        err = capsys.readouterr().err.strip()
        assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
        assert f"cannot write {out}: the folder {folder} does not accept new entries" in err
        with pytest.raises(LatentsteerError, match=f"cannot write {out}: the folder {folder} "):
            steer(["qed=max"], "random:2", model=model_dir, out=out)
    finally:
        if where == "read-only":
            tmp_path.joinpath("ro").chmod(0o755)


def test_steer_refuses_two_goals_on_one_property(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["steer", "--model", str(model_dir), "--goal", "qed=max", "--goal", "logp=keep",
                 "--goal", "qed=min", "--start", "random:2", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert err.endswith("goals qed=max and qed=min both set qed; give one goal per property")
    assert not out.exists()
