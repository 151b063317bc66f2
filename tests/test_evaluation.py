"""Evaluation metrics and figures on a tiny model and judge, each recomputed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from latentsteer.domains.mnist.domain import MNIST
from latentsteer.domains.mnist.evaluation import evaluate, latent_traversal
from latentsteer.domains.mnist.grids import save_grid
from latentsteer.domains.mnist.morphometry import measure
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE
from latentsteer.plots import save_confusion, save_scatter


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def _linear_head(weight: torch.Tensor, center: torch.Tensor) -> nn.Linear:
    """A head reading ``weight @ (z - center)``: known, so its predictions can be recomputed."""
    head = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(-weight @ center)
    return head


class NearestMean:
    """A judge by distance to each digit's mean image: deterministic and far from constant."""

    def __init__(self, images: torch.Tensor, digits: np.ndarray) -> None:
        self.means = torch.stack([images[digits == k].mean(0) for k in range(10)])

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        d = ((torch.as_tensor(images)[:, None] - self.means) ** 2).flatten(2).sum(-1)
        return (-d).softmax(1)


def test_evaluate_metrics_match_a_direct_computation(mnist_test):
    images, labels = mnist_test
    n = 64
    x = torch.as_tensor(images[:n], dtype=torch.float32) / 255
    digits = labels[:n]
    table = measure(images[:n], workers=1)
    table.insert(0, "digit", digits)
    heads = (HeadSpec("digit", "class", "digit"), HeadSpec("thick", "regression", "thickness"))
    torch.manual_seed(0)
    model = MultiHeadVAE(ModelConfig(latent_dim=4, channels=4, hidden=8, head_hidden=8,
                                     heads=heads), MNIST).eval()  # fmt: skip
    model.set_target_scaling({"thick": torch.tensor(table.thickness.to_numpy())})
    # The untrained heads say one digit for every code; linear heads on the codes, scaled to
    # their spread, give predictions that vary and that the test can compute on its own.
    with torch.no_grad():
        mu_t, logvar_t = model.posterior(x)
    g = torch.Generator().manual_seed(1)
    w_digit = torch.randn(10, 4, generator=g) / mu_t.std(0)
    w_thick = torch.randn(1, 4, generator=g) / mu_t.std(0)
    model.heads["digit"] = _linear_head(w_digit, mu_t.mean(0))
    model.heads["thick"] = _linear_head(w_thick, mu_t.mean(0))
    judge = NearestMean(x, digits)
    labelled = pd.DataFrame(table)
    labelled.loc[5, "thickness"] = np.nan  # an unmeasurable label: left out, not propagated
    result = evaluate(model, judge, x, labelled)  # type: ignore[arg-type]
    m = result.metrics

    mu, logvar = mu_t.double().numpy(), logvar_t.double().numpy()
    centred = mu - mu_t.mean(0).double().numpy()
    xs = x.double().numpy().reshape(n, -1)
    thick = labelled.thickness.to_numpy()
    ok = np.isfinite(thick)
    assert ok.sum() == n - 1

    # -ELBO: one seeded posterior sample, Bernoulli NLL plus the closed-form Gaussian KL.
    with torch.no_grad():
        eps = torch.randn(mu_t.shape, generator=torch.Generator().manual_seed(0))
        logits_z = model.decode_logits(mu_t + eps * (0.5 * logvar_t).exp())
        recon = torch.sigmoid(model.decode_logits(mu_t))
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(1)
    lz = logits_z.double().numpy().reshape(n, -1)
    nll = (_softplus(lz) - xs * lz).sum(1)
    assert m["kl_nats"] > 0
    np.testing.assert_allclose(m["kl_nats"], kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(m["recon_nll_nats"], nll.mean(), rtol=1e-5)
    np.testing.assert_allclose(m["neg_elbo_nats"], (nll + kl).mean(), rtol=1e-5)
    assert m["n_images"] == n

    # Heads at the posterior mean. Digit: the argmax of the logits, and the accuracy is the
    # share of matches. Thickness: back in original units (the training column's mean and
    # sd), R² and MAE over the rows with a finite label only.
    classes = (centred @ w_digit.double().numpy().T).argmax(1)
    assert len(set(classes)) >= 5 and 0 < np.mean(classes == digits) < 1  # not degenerate
    assert np.array_equal(result.predictions["digit"], classes)
    assert m["digit_accuracy"] == np.mean(classes == digits)
    column = table.thickness.to_numpy()
    values = (centred @ w_thick.double().numpy().T)[:, 0] * column.std(ddof=1) + column.mean()
    np.testing.assert_allclose(result.predictions["thick"], values, atol=1e-4)  # float32
    resid = values[ok] - thick[ok]
    r2 = 1 - (resid**2).sum() / ((thick[ok] - thick[ok].mean()) ** 2).sum()
    np.testing.assert_allclose(m["thick_r2"], r2, rtol=1e-4)
    np.testing.assert_allclose(m["thick_mae"], np.abs(resid).mean(), rtol=1e-4)

    # Reconstructions are the decoded posterior means; the judge reads them and the originals.
    assert result.reconstructions.shape == (n, 28, 28)
    torch.testing.assert_close(result.reconstructions, recon)
    assert torch.equal(result.originals, x)
    on_recon = judge.probabilities(recon).argmax(1).numpy()
    on_orig = judge.probabilities(x).argmax(1).numpy()
    assert np.array_equal(result.judge_on_recon, on_recon)
    assert m["judge_accuracy_on_reconstructions"] == np.mean(on_recon == digits)
    assert m["judge_accuracy_on_originals"] == np.mean(on_orig == digits)
    assert m["judge_accuracy_on_originals"] > 0.5 > m["judge_accuracy_on_reconstructions"]

    # The reconstructions' measured thickness against the labels: Pearson r and MAE by hand.
    rt = measure(recon.numpy(), workers=1, progress=False).thickness.to_numpy()
    assert np.isfinite(rt).all()
    np.testing.assert_allclose(result.recon_thickness, rt, rtol=1e-12)
    a, b = rt[ok] - rt[ok].mean(), thick[ok] - thick[ok].mean()
    r = (a * b).sum() / np.sqrt((a**2).sum() * (b**2).sum())
    np.testing.assert_allclose(m["recon_thickness_pearson_r"], r, rtol=1e-9)
    np.testing.assert_allclose(m["recon_thickness_mae"], np.abs(rt[ok] - thick[ok]).mean())

    # The seed moves only the ELBO's sample: the KL and every deterministic metric stay.
    other = evaluate(model, judge, x, labelled, seed=1).metrics  # type: ignore[arg-type]
    assert other["recon_nll_nats"] != m["recon_nll_nats"]
    for key in m:
        if key not in ("recon_nll_nats", "neg_elbo_nats"):
            assert other[key] == m[key], key


def test_latent_traversal_sweeps_one_dimension_per_row():
    torch.manual_seed(0)
    heads = (HeadSpec("digit", "class", "digit"),)
    model = MultiHeadVAE(ModelConfig(latent_dim=4, channels=4, hidden=8, head_hidden=8,
                                     heads=heads), MNIST).eval()  # fmt: skip
    start = torch.tensor([0.3, -0.2, 0.7, 1.1])
    trav = latent_traversal(model, start, [0, 2, 3], span=2.0, steps=5)
    assert trav.shape == (3, 5, 28, 28)
    for row, dim in enumerate([0, 2, 3]):
        for col, value in enumerate([-2.0, -1.0, 0.0, 1.0, 2.0]):
            z = start.clone()
            z[dim] = value
            expected = model.decode(z[None]).detach()[0]
            torch.testing.assert_close(trav[row, col], expected, msg=f"dim {dim} at {value}")
    assert torch.equal(start, torch.tensor([0.3, -0.2, 0.7, 1.1]))  # the start is not moved


def test_figures_are_written(tmp_path):
    images = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    save_grid(images, tmp_path / "grid.png")
    # Cells of 2x-enlarged digits, 2 px apart and around; row r, column c at its offset.
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("L"), dtype=float) / 255
    assert grid.shape == (2 + 2 * 58, 2 + 3 * 58)
    for r in range(2):
        for c in range(3):
            cell = grid[2 + 58 * r : 58 * (r + 1), 2 + 58 * c : 58 * (c + 1)]
            big = images[r, c].repeat_interleave(2, 0).repeat_interleave(2, 1).numpy()
            np.testing.assert_allclose(cell, big, atol=1 / 255, err_msg=f"cell {r},{c}")
    cm = save_confusion(np.array([0, 1, 1, 9]), np.array([0, 1, 2, 9]), tmp_path / "cm.png", "t")
    expected = np.zeros((10, 10), dtype=int)
    expected[0, 0] = expected[1, 1] = expected[1, 2] = expected[9, 9] = 1
    assert np.array_equal(cm, expected)
    save_scatter(np.arange(5.0), np.arange(5.0), tmp_path / "s.png", "x", "y", "t")
    for name in ("grid.png", "cm.png", "s.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
