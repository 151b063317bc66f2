"""The batched tensor measures and medial axis: equal, image by image, to the per-image
definition (scikit-image's medial axis of each image alone), on real, perturbed and
decoded-like digits, and at the edges; agreement with the official release."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage
from skimage import morphology
from test_morphometry import assert_agrees_with_official, reference_table

from latentsteer import MEASURES, MorphometryConfig
from latentsteer.domains.mnist.judge import InferenceJudge, Judge
from latentsteer.domains.mnist.medial_axis import keep_table, medial_axis
from latentsteer.domains.mnist.morpho_reference import binarise, measure_one, upscale
from latentsteer.domains.mnist.oracle import DigitOracle
from latentsteer.domains.mnist.tensor_measures import measure_tensors


def perturbed(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Thickened, thinned, cut and speckled copies of ``images (n, 28, 28)`` uint8."""
    rng = np.random.default_rng(seed)
    thick = ndimage.grey_dilation(images, size=(1, 2, 2))
    thin = ndimage.grey_erosion(images, size=(1, 2, 2))
    cut = images.copy()
    cut[:, 13:15, :] = 0
    speckled = np.where(rng.random(images.shape) < 0.03, 255, images).astype(np.uint8)
    return np.concatenate([thick, thin, cut, speckled])


def blurred_floats(images: np.ndarray) -> np.ndarray:
    """Soft float digits in [0, 1], like a decoder's output."""
    return np.clip(ndimage.gaussian_filter(images / 255.0, sigma=(0, 0.8, 0.8)), 0.0, 1.0)


def binary_masks(images: np.ndarray) -> np.ndarray:
    return np.stack([binarise(upscale(im)) for im in images])


def assert_equals_per_image(masks: np.ndarray) -> None:
    pixels, on_axis, distance = medial_axis(torch.as_tensor(masks))
    b, y, x = (t.numpy() for t in pixels)
    for i, mask in enumerate(masks):
        axis, dist = morphology.medial_axis(mask, return_distance=True, rng=42)
        mine = np.zeros_like(axis)
        sel = b == i
        mine[y[sel], x[sel]] = on_axis.numpy()[sel]
        np.testing.assert_array_equal(mine, axis, err_msg=f"axis of image {i}")
        np.testing.assert_allclose(distance.numpy()[sel], dist[y[sel], x[sel]], atol=1e-12)
        assert sel.sum() == mask.sum()  # every foreground pixel is listed once


def test_medial_axis_equals_scikit_image_per_image(mnist_test):
    images = mnist_test[0][:40]
    masks = binary_masks(np.concatenate([images, perturbed(images[:10])]))
    assert_equals_per_image(masks)


def test_medial_axis_at_the_edges():
    masks = np.zeros((5, 20, 24), dtype=bool)
    masks[0, :, :6] = True  # ink along the left border: the outside is not background
    masks[1, 0:3, :] = True  # a band along the top
    masks[2, 5:15, 5:19] = True  # a filled rectangle: ties everywhere
    masks[3, 10, 10] = True  # a single pixel
    masks[4] = np.random.default_rng(1).random((20, 24)) < 0.5  # noise, many components
    assert_equals_per_image(masks)
    assert_equals_per_image(masks[2:3])  # a batch of one


def test_keep_table_is_scikit_images():
    # The cornerness-free part of scikit-image's table, rebuilt from its definition.
    table = keep_table()
    assert table.shape == (512,) and table.dtype == bool
    assert not table[0] and table[16]  # background never stays; a lone pixel does
    assert not table[0b111111111]  # an interior pixel goes
    assert table[16 | 8 | 32]  # the middle of a horizontal line stays
    assert not table[16 | 1 | 2]  # a corner with two touching neighbours goes


@pytest.mark.parametrize("kind", ["uint8", "float"])
def test_every_measure_equals_the_definition(mnist_test, kind):
    images = np.concatenate([mnist_test[0][:60], perturbed(mnist_test[0][:15], seed=2)])
    if kind == "float":
        images = blurred_floats(images)
    ref = reference_table(images)
    got = measure_tensors(images)
    assert list(got.columns) == list(MEASURES)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-9)


def test_only_the_requested_measures(mnist_test):
    images = mnist_test[0][:8]
    got = measure_tensors(images, ["digit", "thickness", "slant"])  # digit is not a measure
    assert list(got.columns) == ["thickness", "slant"]
    ref = reference_table(images)
    np.testing.assert_allclose(got.to_numpy(), ref[["thickness", "slant"]].to_numpy(), atol=1e-9)
    assert measure_tensors(images, []).shape == (8, 0)


def test_results_do_not_depend_on_threads(mnist_test):
    images = mnist_test[0][:70]
    one = measure_tensors(images, threads=1)
    three = measure_tensors(images, threads=3)
    pd.testing.assert_frame_equal(one, three)


def test_blank_empty_and_single_images(mnist_test):
    blank = measure_tensors(np.zeros((2, 28, 28), np.uint8))
    assert (blank.area == 0).all() and (blank.length == 0).all()
    assert blank[["thickness", "slant", "width", "height"]].isna().all().all()
    grey = measure_tensors(np.full((1, 28, 28), 0.4))  # constant, not black: still blank
    assert grey.area.iloc[0] == 0 and np.isnan(grey.thickness.iloc[0])
    assert measure_tensors(np.zeros((0, 28, 28), np.uint8)).shape == (0, len(MEASURES))
    mixed = np.stack([mnist_test[0][0], np.zeros((28, 28), np.uint8)])
    got = measure_tensors(mixed)
    np.testing.assert_allclose(got.iloc[0], reference_table(mixed[:1]).iloc[0], atol=1e-9)
    assert np.isnan(got.thickness.iloc[1])
    one = measure_tensors(torch.as_tensor(mnist_test[0][3:4]))  # a tensor, a batch of one
    np.testing.assert_allclose(one.iloc[0], reference_table(mnist_test[0][3:4]).iloc[0], atol=1e-9)


def test_config_is_followed(mnist_test):
    images = mnist_test[0][:6]
    cfg = MorphometryConfig(threshold=0.3, scale=3, bound_frac=0.1)
    want = pd.DataFrame([measure_one(im, 0.3, 3, 0.1) for im in images])[list(MEASURES)]
    np.testing.assert_allclose(measure_tensors(images, config=cfg).to_numpy(), want, atol=1e-9)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((28, 28)), "shape (n, H, W)"),
        (np.full((1, 28, 28), np.nan), "NaN or infinite"),
        (np.full((1, 28, 28), 3.0), "float images must lie in [0, 1]"),
        (np.full((1, 28, 28), 300), "integer images must lie in [0, 255]"),
    ],
)
def test_bad_input_gets_clear_error(images, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):  # fmt: skip
        measure_tensors(images)


def test_agrees_with_official_release(mnist_test, official_morpho):
    n = 400
    ours = measure_tensors(mnist_test[0][:n])
    assert_agrees_with_official(ours, official_morpho.iloc[:n])


@pytest.mark.slow
def test_agrees_with_official_release_all_10000(mnist_test, official_morpho_full):
    assert_agrees_with_official(measure_tensors(mnist_test[0]), official_morpho_full)


def test_oracle_reads_only_what_is_asked(mnist_test):
    images = torch.as_tensor(mnist_test[0][:5], dtype=torch.float32) / 255
    oracle = DigitOracle(Judge().eval())
    report = oracle.read(images, properties=("thickness",))
    assert list(report.measures.columns) == ["thickness"]
    assert report.probabilities.shape == (5, 10)
    with pytest.raises(ValueError, match="not a measure: colour"):
        oracle.read(images, properties=("colour",))
    full = DigitOracle(Judge().eval(), measures_by="scikit-image").read(images, workers=1)
    assert list(full.measures.columns) == list(MEASURES)
    assert "scikit-image" in DigitOracle(Judge(), measures_by="scikit-image").describe
    with pytest.raises(ValueError, match="measures_by must be"):
        DigitOracle(Judge(), measures_by="opencv")  # type: ignore[arg-type]


@pytest.mark.parametrize("arch", ["lenet", "allconv"])
def test_inference_judge_computes_the_same_function(mnist_test, arch):
    torch.manual_seed(0)
    judge = Judge(arch)
    judge.train()
    x = torch.as_tensor(mnist_test[0][:32], dtype=torch.float32) / 255
    judge(x)  # one training-mode pass gives BatchNorm non-trivial running statistics
    judge.eval()
    fast = InferenceJudge(judge)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    a, b = judge(xa), fast(xb)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    (ga,) = torch.autograd.grad(a.log_softmax(1)[:, 3].sum(), xa)
    (gb,) = torch.autograd.grad(b.log_softmax(1)[:, 3].sum(), xb)
    torch.testing.assert_close(gb, ga, rtol=1e-3, atol=1e-4)
    assert not any(p.requires_grad for p in fast.parameters())
