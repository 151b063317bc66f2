"""One Morpho-MNIST definition everywhere: the oracles, calibration, evaluation and the
steering context measure with the settings the labels were measured with."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_context, tiny_model

from latentsteer import oracles
from latentsteer.domains.mnist.calibrate import (
    CalibrateConfig,
    calibrate,
    decoded_targets,
    measure_config_of,
    save_calibrated,
)
from latentsteer.domains.mnist.evaluation import evaluate
from latentsteer.domains.mnist.judge import Judge
from latentsteer.domains.mnist.morpho_reference import measure_one
from latentsteer.domains.mnist.morphometry import MorphometryConfig, measure
from latentsteer.domains.mnist.oracle import DigitOracle
from latentsteer.errors import LatentsteerError
from latentsteer.experiment import ExperimentConfig, run_experiment
from latentsteer.loading import load_model
from latentsteer.model import save_model
from latentsteer.modelio import write_model_folder
from latentsteer.optimize_config import OptimizeConfig

THIN = MorphometryConfig(threshold=0.3)  # a low threshold keeps more ink: thicker strokes
THICK = MorphometryConfig(threshold=0.7)


@pytest.fixture(scope="module")
def digits(mnist_test) -> torch.Tensor:
    return torch.as_tensor(mnist_test[0][:12], dtype=torch.float32) / 255


def thickness(images: torch.Tensor, cfg: MorphometryConfig | None) -> np.ndarray:
    return measure(images, workers=1, config=cfg, progress=False).thickness.to_numpy()


def thickness_one_by_one(images: torch.Tensor, cfg: MorphometryConfig) -> np.ndarray:
    """The plain per-image reading of the definition (what the tensor path equals)."""
    return np.array([
        measure_one(im, cfg.threshold, cfg.scale, cfg.bound_frac)["thickness"]
        for im in images.double().numpy()
    ])  # fmt: skip


def test_read_and_verify_measure_with_the_given_definition(digits):
    judge = Judge().eval()
    low = DigitOracle(judge, THIN).read(digits, workers=1).measures.thickness.to_numpy()
    high = DigitOracle(judge, THICK).read(digits, workers=1).measures.thickness.to_numpy()
    assert (low > high + 0.3).all()  # the two definitions disagree on every digit
    np.testing.assert_allclose(low, thickness_one_by_one(digits, THIN), rtol=0, atol=1e-9)
    np.testing.assert_allclose(high, thickness_one_by_one(digits, THICK), rtol=0, atol=1e-9)
    default = DigitOracle(judge).read(digits, workers=1).measures.thickness.to_numpy()
    np.testing.assert_allclose(
        default, thickness_one_by_one(digits, MorphometryConfig()), rtol=0, atol=1e-9
    )
    # The certifier's implementation is the labels stage's, mosaics and all.
    skimage = DigitOracle(judge, THIN, measures_by="scikit-image").read(digits, workers=1)
    np.testing.assert_array_equal(skimage.measures.thickness.to_numpy(), thickness(digits, THIN))

    model = tiny_model()
    predicted = {"thickness": torch.zeros(12), "digit": torch.zeros(12, 10)}
    table = oracles.verify(model, DigitOracle(judge, THIN), digits, predicted, workers=1).table
    np.testing.assert_array_equal(table["measured_thickness"].to_numpy(), low)


def test_calibration_fits_the_heads_to_the_given_definition(digits):
    model = tiny_model()
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    got = decoded_targets(model, z, workers=1, config=THIN)["thickness"].numpy()
    expected = thickness(model.decode(z).detach(), THIN)
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    # The same calibration run against two definitions starts from different targets.
    cfg = CalibrateConfig(posterior=12, prior=12, holdout=20, epochs=1, workers=1)
    before = {
        name: calibrate(tiny_model(), digits, cfg, progress=False, measure_config=m)
        for name, m in (("thin", THIN), ("thick", THICK))
    }
    assert before["thin"]["thickness_mae_before"] != before["thick"]["thickness_mae_before"]


def test_evaluate_measures_reconstructions_with_the_given_definition(digits, mnist_test):
    model = tiny_model()
    labels = pd.DataFrame({"digit": mnist_test[1][:12], "thickness": thickness(digits, THIN)})
    result = evaluate(model, Judge().eval(), digits, labels, measure_config=THIN)
    np.testing.assert_array_equal(result.recon_thickness, thickness(result.reconstructions, THIN))
    default = evaluate(model, Judge().eval(), digits, labels)
    assert not np.allclose(default.recon_thickness, result.recon_thickness)


def test_a_calibrated_folder_records_its_definition(tmp_path):
    model = tiny_model()
    save_calibrated(model, tmp_path / "cal", {"x": 1.0}, THIN)
    assert measure_config_of(tmp_path / "cal") == THIN
    meta = json.loads((tmp_path / "cal" / "config.json").read_text())
    assert meta["measure"] == {"threshold": 0.3, "scale": 4, "bound_frac": 0.02,
                               "chunk_size": 128}  # fmt: skip
    # It is an ordinary model folder: the same weights, loaded as any other.
    again = load_model(tmp_path / "cal")
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    # A folder that records no definition: the caller's defaults apply.
    save_model(model, tmp_path / "plain")
    assert measure_config_of(tmp_path / "plain") is None
    # A damaged entry is one line naming the file.
    write_model_folder(tmp_path / "bad", "latentsteer.MultiHeadVAE/1", {}, {},
                       extra={"measure": {"threshold": 2.0}})  # fmt: skip
    with pytest.raises(LatentsteerError, match=r"bad/config.json: bad 'measure' entry"):
        measure_config_of(tmp_path / "bad")
    with pytest.raises(ValueError, match="cannot be named 'format' or 'model'"):
        write_model_folder(tmp_path / "clash", "f", {}, {}, extra={"model": {}})


def test_the_steering_context_takes_the_folder_definition(tmp_path, monkeypatch, mnist_test):
    import latentsteer.domains.mnist.steering_context as sc

    images, labels = mnist_test[0][:60], mnist_test[1][:60]
    table = pd.DataFrame({"thickness": np.linspace(1.5, 4.0, 60)})
    monkeypatch.setattr(sc, "load_split", lambda root, split: (images, labels))
    monkeypatch.setattr(sc, "read_labels", lambda root, split: table)
    monkeypatch.setattr(sc, "load_judge", lambda path, device: Judge().eval())
    save_calibrated(tiny_model(), tmp_path / "cal", None, THIN)
    save_model(tiny_model(), tmp_path / "plain")
    cfg = OptimizeConfig(device="cpu", reference=20, knn_codes=20, workers=1)

    def load(folder: str, **kwargs):
        return sc.load_context(tmp_path / folder, "judge", "raw", "labels", cfg, **kwargs)

    assert load("cal").oracle.config == THIN
    assert load("plain").oracle.config is None
    assert load("cal", measure_config=THICK).oracle.config == THICK  # the caller's wins
    assert load("cal", certifier_dir="cert").certifier.config == THIN  # both oracles alike


def test_an_experiment_is_graded_with_the_context_definition(mnist_test):
    base = tiny_context(mnist_test, codes=20, reference=20)
    ctx = dataclasses.replace(base, oracle=DigitOracle(base.oracle.judge, THIN))
    cfg = ExperimentConfig(goals=["thickness=max"], start="random:4", steps=2, record_every=1)
    out = run_experiment(cfg, ctx)
    frames = out.images.reshape(-1, 28, 28)  # every frame, measured in one call as the runner does
    got = np.concatenate([r.measures.thickness.to_numpy() for r in out.frame_reports])
    want = thickness_one_by_one(torch.as_tensor(frames), THIN)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_frames_that_did_not_move_are_not_read_again(mnist_test):
    """Grading reads each recorded frame whose code moved; a stopped sample's later frames
    repeat its last reading, which equals reading them afresh."""
    from latentsteer.runner import read_frames

    digits = torch.as_tensor(mnist_test[0][:12], dtype=torch.float32) / 255
    z = torch.arange(12, dtype=torch.float32).reshape(4, 3, 1).repeat(1, 1, 2)  # (F, n, d)
    images = digits.reshape(4, 3, 28, 28).clone()
    for f, i in [(1, 0), (2, 0), (3, 0), (3, 2)]:  # sample 0 stops after frame 0, 2 at frame 2
        z[f, i], images[f, i] = z[f - 1, i], images[f - 1, i]
    oracle = DigitOracle(Judge().eval())
    asked: list[int] = []

    class Counting:
        def read(self, samples, workers=None, properties=None):
            asked.append(len(samples))
            return oracle.read(samples, workers, properties)

    reports = read_frames(Counting(), images, z, workers=1)  # type: ignore[arg-type]
    assert asked == [12 - 4]
    fresh = oracle.read(images.reshape(12, 28, 28))
    for f, report in enumerate(reports):
        want = fresh.rows(f * 3, (f + 1) * 3)
        np.testing.assert_allclose(report.measures.to_numpy(), want.measures.to_numpy(), atol=1e-9)
        np.testing.assert_array_equal(report.label, want.label)
