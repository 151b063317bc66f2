"""Head calibration on measured decoded images: what changes, what does not, and the errors."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import tiny_model

import latentsteer.domains.mnist.calibrate as calibration
from latentsteer.domains.mnist.calibrate import (
    CalibrateConfig,
    calibrate,
    decoded_targets,
    measurable_heads,
)
from latentsteer.domains.mnist.morphometry import MorphometryConfig, measure


def test_calibration_fits_the_heads_to_what_the_decoder_draws(mnist_test, monkeypatch):
    model = tiny_model()
    uncalibrated = copy.deepcopy(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.as_tensor(mnist_test[0][:20], dtype=torch.float32) / 255
    # Every code calibrate measures passes through decoded_targets: record them, and make two
    # of the fit codes unmeasurable (as a blank decode is), which must be left out.
    seen = []

    def spy(model, z, workers=None, config=None):
        targets = decoded_targets(model, z, workers, config)
        targets["thickness"][[3, 45]] = float("nan")
        seen.append((z.clone(), targets, config))
        return targets

    monkeypatch.setattr(calibration, "decoded_targets", spy)
    cfg = CalibrateConfig(posterior=20, prior=20, holdout=20, epochs=30, batch_size=32, lr=1e-2,
                          workers=1)  # fmt: skip
    definition = MorphometryConfig(threshold=0.45)
    report = calibrate(model, images, cfg, progress=False, measure_config=definition)
    assert measurable_heads(model) == ["thickness"]

    # What was measured: the 20 digits' posterior means, a sample of each, 20 prior draws to
    # fit on; then 20 more prior draws held out.
    ((z, targets, measured_with),) = seen
    assert measured_with is definition  # the labels' definition, not the defaults
    assert z.shape == (80, 4)
    torch.testing.assert_close(z[:20], uncalibrated.encode(images))
    assert not torch.allclose(z[20:40], z[:20])
    fit, held = slice(0, 60), slice(60, 80)
    target = targets["thickness"]
    finite = torch.isfinite(target[fit])
    assert report["calibration_codes"] == int(finite.sum()) == 58  # the two NaNs left out

    def mae(m, rows: slice) -> float:
        with torch.no_grad():
            err = (m.predict(z[rows])["thickness"] - target[rows]).abs()
        return float(err[torch.isfinite(err)].mean())

    # The report's errors are those of the model before and after on the held-out draws.
    assert report["thickness_mae_before"] == pytest.approx(mae(uncalibrated, held), rel=1e-5)
    assert report["thickness_mae_after"] == pytest.approx(mae(model, held), rel=1e-5)
    # The head learned what the decoder draws: its error falls by a real margin, on the codes
    # it was fitted to and on the held-out ones (before, it is centred on the labels' 2.5 px,
    # far from the strokes this untrained decoder draws).
    assert mae(model, fit) < 0.25 * mae(uncalibrated, fit)
    assert report["thickness_mae_after"] < 0.25 * report["thickness_mae_before"]

    # Only the measurable head moved; encoder, decoder and digit head are untouched.
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("heads.thickness.") for k in changed)
    assert all(torch.isfinite(after[k]).all() for k in changed)


def test_decoded_targets_are_the_measures_of_decoded_images():
    model = tiny_model()
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    decoded = model.decode(z).detach().numpy()
    expected = measure(decoded, workers=1, progress=False).thickness.to_numpy()
    got = decoded_targets(model, z, workers=1)["thickness"]
    assert torch.allclose(got, torch.as_tensor(expected, dtype=torch.float32))
    # Measured with the definition asked for: a lower threshold draws thicker strokes.
    lower = MorphometryConfig(threshold=0.3)
    expected = measure(decoded, workers=1, progress=False, config=lower).thickness.to_numpy()
    got_lower = decoded_targets(model, z, workers=1, config=lower)["thickness"]
    assert torch.allclose(got_lower, torch.as_tensor(expected, dtype=torch.float32))
    assert (got_lower > got).all()


def test_calibration_needs_a_measurable_head():
    from latentsteer.domains.mnist.domain import MNIST
    from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE

    cfg = ModelConfig(latent_dim=4, channels=4, hidden=16, head_hidden=8,
                      heads=(HeadSpec("digit", "class", "digit"),))  # fmt: skip
    with pytest.raises(ValueError, match="needs a regression head on a Morpho-MNIST measure"):
        calibrate(
            MultiHeadVAE(cfg, MNIST), torch.zeros(4, 28, 28), CalibrateConfig(), progress=False
        )
    with pytest.raises(ValueError, match="calibrate.epochs must be a positive integer"):
        CalibrateConfig(epochs=0)
