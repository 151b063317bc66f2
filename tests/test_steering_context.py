"""The `context` stage's file: what it stores, and one-line errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_context

from latentsteer.domains.mnist.steering_context import read_context_file, write_context_file
from latentsteer.errors import LatentsteerError
from latentsteer.experiment import Context
from latentsteer.optimize_config import OptimizeConfig

CFG = OptimizeConfig(reference=30, knn_codes=20)
F = 128  # the judge's feature width


@pytest.fixture(scope="module")
def ctx(mnist_test) -> Context:
    return tiny_context(mnist_test, codes=20, reference=30)


def test_round_trip_gives_the_features_the_context_computes(ctx, tmp_path):
    path = tmp_path / "context.npz"
    write_context_file(ctx, path)
    stored = read_context_file(path, CFG, latent_dim=4, feature_dim=F)
    np.testing.assert_array_equal(stored["reference_features"], ctx.reference_features)
    np.testing.assert_array_equal(stored["train_codes"], ctx.train_codes.numpy())
    # A context built with the stored features equals one that computes them itself.
    again = Context(
        ctx.model, ctx.oracle, ctx.reference, ctx.reference_label, ctx.reference_value,
        torch.as_tensor(stored["train_codes"]), None, 1, stored["reference_features"],
    )  # fmt: skip
    assert np.array_equal(again.reference_features, ctx.oracle.embed(ctx.reference).numpy())
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


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
