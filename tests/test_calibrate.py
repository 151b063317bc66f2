"""Head calibration on measured decoded images: what changes, what does not, and the errors."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model

from latentsteer.domains.mnist.calibrate import (
    CalibrateConfig,
    calibrate,
    decoded_targets,
    measurable_heads,
)


def test_calibration_refits_only_the_measurable_heads(mnist_test):
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.as_tensor(mnist_test[0][:60], dtype=torch.float32) / 255
    cfg = CalibrateConfig(posterior=60, prior=60, holdout=40, epochs=30, lr=3e-3, workers=1)
    report = calibrate(model, images, cfg, progress=False)
    assert measurable_heads(model) == ["thickness"]
    assert report["calibration_codes"] <= 180
    # The held-out error falls: the head learned what the decoder draws.
    assert report["thickness_mae_after"] < report["thickness_mae_before"]
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("heads.thickness.") for k in changed)


def test_decoded_targets_are_the_measures_of_decoded_images():
    model = tiny_model()
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    from latentsteer.domains.mnist.morphometry import measure

    expected = measure(model.decode(z).detach().numpy(), workers=1, progress=False).thickness
    got = decoded_targets(model, z, workers=1)["thickness"]
    assert torch.allclose(got, torch.as_tensor(expected.to_numpy(), dtype=torch.float32))


def test_calibration_needs_a_measurable_head():
    from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE

    cfg = ModelConfig(latent_dim=4, channels=4, hidden=16, head_hidden=8,
                      heads=(HeadSpec("digit", "class", "digit"),))  # fmt: skip
    with pytest.raises(ValueError, match="needs a regression head on a Morpho-MNIST measure"):
        calibrate(MultiHeadVAE(cfg), torch.zeros(4, 28, 28), CalibrateConfig(), progress=False)
    with pytest.raises(ValueError, match="calibrate.epochs must be a positive integer"):
        CalibrateConfig(epochs=0)
