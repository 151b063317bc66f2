"""Evaluation metrics and figures on a tiny model and judge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from latentsteer.domains.mnist.evaluation import evaluate, latent_traversal
from latentsteer.domains.mnist.grids import save_grid
from latentsteer.domains.mnist.judge import Judge
from latentsteer.domains.mnist.morphometry import measure
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE
from latentsteer.plots import save_confusion, save_scatter


def test_evaluate_reports_every_metric(mnist_test):
    images, labels = mnist_test
    x = torch.as_tensor(images[:64], dtype=torch.float32) / 255
    table = measure(images[:64], workers=1)
    table.insert(0, "digit", labels[:64])
    heads = (HeadSpec("digit", "class", "digit"), HeadSpec("thick", "regression", "thickness"))
    torch.manual_seed(0)
    model = MultiHeadVAE(ModelConfig(latent_dim=4, channels=4, hidden=8, head_hidden=8,
                                     heads=heads)).eval()  # fmt: skip
    model.set_target_scaling({"thick": torch.as_tensor(table.thickness.to_numpy())})
    result = evaluate(model, Judge().eval(), x, pd.DataFrame(table))
    m = result.metrics
    keys = ["neg_elbo_nats", "recon_nll_nats", "kl_nats", "digit_accuracy", "thick_r2"]
    keys += ["thick_mae", "judge_accuracy_on_reconstructions", "recon_thickness_pearson_r"]
    for key in keys:
        assert np.isfinite(m[key]), key
    assert np.isclose(m["neg_elbo_nats"], m["recon_nll_nats"] + m["kl_nats"])
    assert 0 <= m["digit_accuracy"] <= 1
    assert result.reconstructions.shape == (64, 28, 28)
    assert result.predictions["digit"].shape == (64,)
    trav = latent_traversal(model, model.encode(x[:1])[0], [0, 1, 2], steps=5)
    assert trav.shape == (3, 5, 28, 28)


def test_figures_are_written(tmp_path):
    save_grid(torch.rand(2, 3, 28, 28), tmp_path / "grid.png")
    cm = save_confusion(np.array([0, 1, 1]), np.array([0, 1, 2]), tmp_path / "cm.png", "t")
    assert cm[1, 1] == 1 and cm[1, 2] == 1 and cm.sum() == 3
    save_scatter(np.arange(5.0), np.arange(5.0), tmp_path / "s.png", "x", "y", "t")
    for name in ("grid.png", "cm.png", "s.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
