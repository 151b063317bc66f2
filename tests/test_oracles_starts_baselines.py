"""Oracles, start specs and the data-space baseline, on a tiny model and real digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_model

from latentsteer import oracles
from latentsteer.baselines import data_space_ascent
from latentsteer.domains.mnist.domain import MNIST
from latentsteer.domains.mnist.judge import Judge
from latentsteer.domains.mnist.oracle import DigitOracle, read
from latentsteer.model import MultiHeadVAE
from latentsteer.objectives import Keep, Maximize


@pytest.fixture
def model() -> MultiHeadVAE:
    return tiny_model()


def test_frechet_distance_properties():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8))
    b = rng.normal(size=(500, 8))
    assert oracles.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    near = oracles.frechet_distance(a, b)
    far = oracles.frechet_distance(a, b + 3.0)
    assert 0 <= near < far
    assert far == pytest.approx(near + 8 * 9.0, rel=0.05)  # mean shift of 3 in 8 dims
    with pytest.raises(ValueError, match="at least 2 samples"):
        oracles.frechet_distance(a[:1], b)


def test_read_measures_and_judges(mnist_test):
    torch.manual_seed(0)
    x = torch.as_tensor(mnist_test[0][:8], dtype=torch.float32) / 255
    report = read(x, Judge().eval(), workers=1)
    assert len(report.measures) == 8 and report.label.shape == (8,)
    np.testing.assert_allclose(report.probabilities.sum(1), 1.0, rtol=1e-5)
    assert np.all(report.confidence == report.probabilities.max(1))
    assert oracles.realism(x, x, DigitOracle(Judge().eval())) == pytest.approx(0.0, abs=1e-3)


def test_start_specs(model, tmp_path, mnist_test):
    rand = MNIST.parse_start("random:5", model, seed=1)
    assert rand.z.shape == (5, 4) and rand.images is None
    torch.testing.assert_close(rand.z, model.sample_prior(5, seed=1))
    test = MNIST.parse_start("test:3-6", model)
    assert test.z.shape == (4, 4) and test.labels.tolist() == mnist_test[1][3:7].tolist()
    np.save(tmp_path / "mine.npy", mnist_test[0][:2])
    mine = MNIST.parse_start(str(tmp_path / "mine.npy"), model)
    torch.testing.assert_close(mine.images, torch.as_tensor(mnist_test[0][:2] / 255.0).float())


def test_sure_starts_are_the_prior_draws_the_digit_head_reads_surely(model, monkeypatch):
    import latentsteer.domains.mnist.domain as mnist_domain

    draws = model.sample_prior(6, seed=2)
    with torch.no_grad():
        sure = model.predict(draws)["digit"].max(1).values  # (6,)
    # the untrained head is never sure: a threshold at its 3rd-highest reading keeps 3 of
    # the first batch of 6, in draw order; the next batches fill the rest
    third = float(sure.sort(descending=True).values[2])
    monkeypatch.setattr(mnist_domain, "SURE", third)
    start = MNIST.parse_start("sure:6", model, seed=2)
    assert start.z.shape == (6, 4)
    torch.testing.assert_close(start.z[:3], draws[sure >= third])
    with torch.no_grad():
        assert (model.predict(start.z)["digit"].max(1).values >= third).all()
    assert start.images is None and start.labels is None
    monkeypatch.setattr(mnist_domain, "SURE", 1.01)  # no draw can pass
    with pytest.raises(ValueError, match=r"only 0 of 150 prior draws have a digit head reading"):
        MNIST.parse_start("sure:3", model)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("random:0", "N must be at least 1"),
        ("test:5-2", "0 <= A <= B < 10000"),
        ("train:0-3", "bad start 'train:0-3'; accepted: random:N, sure:N"),
        ("sure:0", "N must be at least 1"),
        ("nowhere.npy", "neither a spec nor an existing path"),
    ],
)
def test_bad_start_specs(model, spec, message):
    with pytest.raises(ValueError, match=message):
        MNIST.parse_start(spec, model)


def test_data_space_ascent_moves_pixels_within_range(model, mnist_test):
    x = torch.as_tensor(mnist_test[0][:3], dtype=torch.float32) / 255
    res = data_space_ascent(model, x, [Maximize("thickness")], steps=10, lr=0.05)
    assert res.images.shape == (11, 3, 28, 28)
    assert res.images.min() >= 0 and res.images.max() <= 1
    torch.testing.assert_close(res.images[0], x)
    assert (res.predicted["thickness"][-1] > res.predicted["thickness"][0]).all()
    assert all(p.grad is None for p in model.parameters())
    # Constraints bind at the encoded start, as in latent steering.
    kept = data_space_ascent(model, x, [Maximize("thickness"), Keep("digit")], steps=3)
    assert kept.images.shape == (4, 3, 28, 28)


def test_matched_reference_picks_same_class_nearest_thickness():
    ref_digit = np.array([3, 3, 3, 7, 7])
    ref_thick = np.array([1.0, 2.0, 4.0, 2.0, 5.0])
    idx = oracles.matched_reference(
        np.array([3, 3, 7, 1]), np.array([3.9, 1.4, 9.0, 2.1]), ref_digit, ref_thick
    )
    # A class missing from the reference matches on thickness alone.
    assert idx.tolist() == [2, 0, 4, 1]
    # Each real digit is used once while its class has unused ones; then repeats begin.
    again = oracles.matched_reference(np.full(4, 7), np.full(4, 2.0), ref_digit, ref_thick)
    assert again.tolist() == [3, 4, 3, 3]


def test_frechet_at_a_fixed_size_does_not_reward_bigger_sets():
    """The plain Fréchet score of 100 samples is inflated against 1 000 from the same
    distribution; scored at a fixed size both come out alike."""
    from latentsteer.oracles import frechet_at_fixed_n, frechet_distance

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(3000, 32))
    small, large = rng.normal(size=(100, 32)), rng.normal(size=(1000, 32))
    plain_small, plain_large = (
        frechet_distance(small, reference),
        frechet_distance(large, reference),
    )
    assert plain_small > 2 * plain_large  # the size effect the fixed size removes
    fixed_small, fixed_large = (
        frechet_at_fixed_n(small, reference),
        frechet_at_fixed_n(large, reference),
    )
    assert fixed_small == pytest.approx(plain_small)
    assert fixed_large == pytest.approx(fixed_small, rel=0.15)
    # Paired: a matched reference row per sample, subsampled with the same rows.
    assert frechet_at_fixed_n(large, large, paired=True) == pytest.approx(0.0, abs=1e-6)
