"""The `context` stage's file: what it stores, and one-line errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_context

from latentsteer.domains.mnist.steering_context import read_context_file, write_context_file
from latentsteer.errors import LatentsteerError
from latentsteer.experiment import Context, ExperimentConfig, run_experiment
from latentsteer.optimize_config import OptimizeConfig

CFG = OptimizeConfig(reference=30, knn_codes=20)
F = 128  # the judge's feature width


@pytest.fixture(scope="module")
def ctx(mnist_test) -> Context:
    return tiny_context(mnist_test, codes=20, reference=30)


def test_round_trip_gives_the_features_the_context_computes(ctx, tmp_path, mnist_test):
    path = tmp_path / "context.npz"
    write_context_file(ctx, path)
    stored = read_context_file(path, CFG, latent_dim=4, feature_dim=F)
    # The stored features are the certifying judge's penultimate layer on the reference,
    # computed here through the network's own layers, not through Context or embed().
    judge = ctx.grader.judge
    with torch.no_grad():
        direct = judge.features(ctx.reference.unsqueeze(1)).numpy()
    np.testing.assert_allclose(stored["reference_features"], direct, rtol=0, atol=1e-6)
    # The kNN codes are the posterior means of the first 20 test digits (tiny_context).
    first = torch.as_tensor(mnist_test[0][:20], dtype=torch.float32) / 255
    with torch.no_grad():
        mu, _ = ctx.model.posterior(first)
    np.testing.assert_allclose(stored["train_codes"], mu.numpy(), rtol=0, atol=1e-6)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_stored_features_grade_experiments_as_computed_ones_do(ctx, tmp_path):
    """A context given the stored features (as the optimize stages are) reports the same
    realism as one that computes them, and other features would change it."""
    path = tmp_path / "context.npz"
    write_context_file(ctx, path)
    stored = read_context_file(path, CFG, latent_dim=4, feature_dim=F)

    def with_features(features: np.ndarray) -> Context:
        return Context(
            ctx.model, ctx.oracle, ctx.reference, ctx.reference_label, ctx.reference_value,
            torch.as_tensor(stored["train_codes"]), None, 1, features,
        )  # fmt: skip

    cfg = ExperimentConfig(goals=["thickness=max"], start="random:8", steps=3, guide=False)
    computed = run_experiment(cfg, ctx).metrics
    cached = run_experiment(cfg, with_features(stored["reference_features"])).metrics
    assert cached["realism_start"] == computed["realism_start"]
    assert cached["realism_end"] == computed["realism_end"]
    shifted = run_experiment(cfg, with_features(stored["reference_features"] + 1.0)).metrics
    assert shifted["realism_start"] > computed["realism_start"] + 1.0


def test_bad_files_get_one_line(ctx, tmp_path):
    good = tmp_path / "good.npz"
    write_context_file(ctx, good)
    with pytest.raises(LatentsteerError, match=r"missing\.npz is missing; re-run `dvc repro"):
        read_context_file(tmp_path / "missing.npz", CFG, 4, F)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(good.read_bytes()[:200])
    with pytest.raises(LatentsteerError, match="damaged or not an .npz file"):
        read_context_file(broken, CFG, 4, F)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(LatentsteerError, match="is not a steering context"):
        read_context_file(foreign, CFG, 4, F)
    with pytest.raises(
        LatentsteerError,
        match=r"reference_features is shape \(30, 128\), expected \(40, 128\) for "
        r"optimize.reference 40, optimize.knn_codes 20 and a 4-d model",
    ):
        read_context_file(good, OptimizeConfig(reference=40, knn_codes=20), 4, F)
    with pytest.raises(LatentsteerError, match=r"train_codes is shape \(20, 4\), expected"):
        read_context_file(good, CFG, 8, F)  # another model's code size
    with pytest.raises(
        LatentsteerError, match=r"reference_features is shape \(30, 128\), expected \(30, 64\)"
    ):
        read_context_file(good, CFG, 4, 64)  # another judge's feature width
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["train_codes"][0, 0] = np.nan
    nan = tmp_path / "nan.npz"
    np.savez(nan, **arrays)
    with pytest.raises(LatentsteerError, match="train_codes holds NaN"):
        read_context_file(nan, CFG, 4, F)
