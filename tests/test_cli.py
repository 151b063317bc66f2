"""`latentsteer measure` on the user's own images."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from latentsteer import MEASURES, measure
from latentsteer.cli import main


def test_measure_npy_to_csv(mnist_test, tmp_path):
    images = mnist_test[0][:20]
    np.save(tmp_path / "digits.npy", images)
    out = tmp_path / "m.csv"
    assert main(["measure", str(tmp_path / "digits.npy"), "--out", str(out), "--workers", "1"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["index", *MEASURES]
    assert table["index"].tolist() == list(range(20))
    expected = measure(images, workers=1)
    np.testing.assert_allclose(table[list(MEASURES)], expected, rtol=1e-6)


def test_measure_npz_to_parquet(mnist_test, tmp_path):
    np.savez(tmp_path / "d.npz", images=mnist_test[0][:5], labels=np.arange(5))
    out = tmp_path / "m.parquet"
    assert main(["measure", str(tmp_path / "d.npz"), "--out", str(out)]) == 0
    assert len(pd.read_parquet(out)) == 5


def test_measure_png_folder_in_natural_order(mnist_test, tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    images = mnist_test[0][:11]
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"digit{i}.png")
    out = tmp_path / "m.csv"
    assert main(["measure", str(folder), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table["file"].tolist() == [f"digit{i}.png" for i in range(11)]  # 2 before 10
    expected = measure(images, workers=1)
    np.testing.assert_allclose(table["thickness"], expected.thickness, rtol=1e-6)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: np.save(d / "x.npy", np.full((2, 28, 28), np.nan)), "NaN"),
        (lambda d: np.save(d / "x.npy", np.zeros((3, 784))), r"reshape flat images"),
        (lambda d: np.savez(d / "x.npz", a=np.zeros(1), b=np.zeros(1)), "name the images array"),
        (lambda d: (d / "x.npy").write_bytes(b"junk"), "not a readable .npy"),
    ],
)
def test_measure_bad_input_one_line(tmp_path, capsys, setup, message):
    setup(tmp_path)
    src = next(tmp_path.iterdir())
    out = tmp_path / "out.csv"
    assert main(["measure", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("latentsteer measure: error:") and len(err.splitlines()) == 1
    assert pytest.importorskip("re").search(message, err)
    assert not out.exists()


@pytest.mark.parametrize(
    "setup",
    [
        lambda d: np.save(d / "x.npy", np.array([{"image": 1}, None], dtype=object)),
        lambda d: np.save(d / "x.npy", {"images": np.zeros((2, 28, 28))}, allow_pickle=True),
        lambda d: (d / "x.npy").write_bytes(pickle.dumps([np.zeros((28, 28))])),
        lambda d: np.savez(d / "x.npz", images=np.array([np.zeros(3), None], dtype=object)),
    ],
    ids=["object-array", "pickled-dict", "plain-pickle", "npz-object-member"],
)
def test_measure_pickled_objects_one_line_no_unsafe_advice(tmp_path, capsys, setup):
    setup(tmp_path)
    src = next(tmp_path.iterdir())
    out = tmp_path / "out.csv"
    assert main(["measure", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"latentsteer measure: error: {src} holds Python objects (pickled), not an image array; "
        "save the images as a numeric array with numpy.save"
    )
    assert "allow_pickle" not in err and "trust" not in err  # numpy's advice to unpickle
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [src.name]


def test_measure_junk_npy_does_not_mention_pickles(tmp_path, capsys):
    (tmp_path / "x.npy").write_bytes(b"junk that is neither an array nor a pickle")
    assert main(["measure", str(tmp_path / "x.npy"), "--out", str(tmp_path / "m.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("x.npy is not a readable .npy file (not in NumPy's .npy or .npz format)")
    assert "pickle" not in err


def test_measure_rejects_bad_output_suffix_before_work(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), np.uint8))
    assert main(["measure", str(tmp_path / "x.npy"), "--out", str(tmp_path / "m.xlsx")]) == 1
    assert "--out must end in .csv or .parquet" in capsys.readouterr().err


def test_console_script_runs(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), np.uint8))
    exe = [sys.executable, "-m", "latentsteer.cli"]
    ok = subprocess.run(
        [*exe, "measure", str(tmp_path / "x.npy"), "--out", str(tmp_path / "m.csv")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [*exe, "measure", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "m.csv")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and "does not exist" in bad.stderr


def test_sample_writes_grid(tmp_path):
    import torch

    from latentsteer.domains.mnist.domain import MNIST
    from latentsteer.model import ModelConfig, MultiHeadVAE, save_model

    torch.manual_seed(0)
    save_model(
        MultiHeadVAE(ModelConfig(latent_dim=3, channels=4, hidden=8), MNIST), tmp_path / "vae"
    )
    out = tmp_path / "grid.png"
    args = ["sample", "--model", str(tmp_path / "vae"), "-n", "10", "--seed", "1"]
    assert main([*args, "--out", str(out)]) == 0
    with Image.open(out) as im:
        width, height = im.size
    assert width > height > 0  # 4 columns, 3 rows of 56-pixel cells plus padding
    assert (width, height) == (4 * 58 + 2, 3 * 58 + 2)


def test_sample_errors_are_one_line(tmp_path, capsys):
    assert (
        main(["sample", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "g.png")]) == 1
    )
    err = capsys.readouterr().err
    assert "is not a model folder" in err and len(err.strip().splitlines()) == 1
    assert main(["sample", "--model", str(tmp_path), "-n", "0", "--out", "g.png"]) == 1
    assert "-n must be a positive integer" in capsys.readouterr().err


def _read_only_or_skip(folder):
    """``folder``, made read-only; skips where the user (root) writes into it anyway."""
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").mkdir()
    except OSError:
        return folder
    (folder / "probe").rmdir()
    folder.chmod(0o755)
    pytest.skip("this user (root) writes into read-only folders; /proc/x is tested instead")


@pytest.mark.parametrize("where", ["/proc/x", "read-only"])
def test_steer_to_a_folder_it_cannot_write_fails_first_in_one_line(
    tmp_path, capsys, monkeypatch, where
):
    from latentsteer import registry
    from latentsteer.errors import LatentsteerError
    from latentsteer.request import steer

    def read(model):
        raise AssertionError(f"{model} was read before --out was checked")

    monkeypatch.setattr(registry, "domain_of", read)  # the CLI's
    monkeypatch.setattr("latentsteer.request.domain_of", read)  # the library's
    out = tmp_path / "ro" / "out" if where == "read-only" else "/proc/x"
    if where == "read-only":
        _read_only_or_skip(tmp_path / "ro")
    folder = tmp_path / "ro" if where == "read-only" else "/proc"
    try:
        code = main(["steer", "--model", str(tmp_path / "vae"), "--goal", "thickness=max",
                     "--goal", "digit=keep", "--out", str(out)])  # fmt: skip
        err = capsys.readouterr().err.strip()
        assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
        assert err.startswith(f"latentsteer steer: error: cannot write {out}: the folder "
                              f"{folder} does not accept new entries (")  # fmt: skip
        with pytest.raises(LatentsteerError, match=f"cannot write {out}: the folder {folder} "):
            steer(["thickness=max"], model=tmp_path / "vae", out=out)
    finally:
        if where == "read-only":
            (tmp_path / "ro").chmod(0o755)
    assert not (tmp_path / "ro" / "out").exists()


def test_steer_refuses_contradictory_goals_in_one_line(tmp_path, capsys, monkeypatch):
    from latentsteer import registry

    def mnist(model):  # the folder would name MNIST; the goals fail before it is loaded
        return registry.get_domain("mnist")

    monkeypatch.setattr(registry, "domain_of", mnist)
    monkeypatch.setattr("latentsteer.request.domain_of", mnist)
    code = main(["steer", "--model", str(tmp_path / "vae"), "--goal", "thickness=max",
                 "--goal", "thickness=min", "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert err.endswith(
        "goals thickness=max and thickness=min both set thickness; give one goal per property"
    )
    assert not (tmp_path / "out").exists()
