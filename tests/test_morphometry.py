"""The fast batched measures: agreement with the per-image definition and the official
release, correctness off the training distribution, and defined results at the edges."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage
from strokes import arc, segment

from latentsteer import MEASURES, MorphometryConfig, measure
from latentsteer.domains.mnist import morphometry
from latentsteer.domains.mnist.morpho_reference import measure_one
from latentsteer.errors import LatentsteerError

# Enough images for two workers (measure() runs fewer than 512 per worker in-process).
POOLED = 1100


def reference_table(images: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame([measure_one(im) for im in images])[list(MEASURES)]


def test_matches_per_image_definition(mnist_test):
    images = mnist_test[0][:160]
    fast = measure(images, workers=1)
    ref = reference_table(images)
    # Area, slant, width and height involve no tie-breaking: the same numbers.
    for col in ("area", "slant", "width", "height"):
        np.testing.assert_allclose(fast[col], ref[col], rtol=1e-9, atol=1e-9, err_msg=col)
    # Skeletons may break ties between equidistant pixels differently (see morphometry.py).
    assert np.abs(fast.thickness - ref.thickness).mean() < 0.02
    assert np.corrcoef(fast.thickness, ref.thickness)[0, 1] > 0.999
    assert np.corrcoef(fast.length, ref.length)[0, 1] > 0.99


def assert_agrees_with_official(ours: pd.DataFrame, official: pd.DataFrame) -> None:
    """The acceptance targets: thickness r >= 0.995 and MAD <= 0.05 px, length r >= 0.98,
    the other measures r >= 0.995."""
    r = {c: np.corrcoef(ours[c], official[c])[0, 1] for c in MEASURES}
    assert r["thickness"] >= 0.995
    assert np.abs(ours.thickness - official.thickness).mean() <= 0.05
    for col in ("area", "slant", "width", "height"):
        assert r[col] >= 0.995, (col, r[col])
    assert r["length"] >= 0.98


def test_agrees_with_official_release(mnist_test, official_morpho):
    n = 400
    assert_agrees_with_official(measure(mnist_test[0][:n], workers=1), official_morpho.iloc[:n])


@pytest.mark.slow
def test_agrees_with_official_release_all_10000(mnist_test, official_morpho_full):
    assert_agrees_with_official(measure(mnist_test[0]), official_morpho_full)


@pytest.mark.parametrize("width", [2.0, 3.0, 4.0, 5.0, 6.0])
def test_thickness_tracks_drawn_width(width):
    images = np.stack(
        [
            segment(width, (6, 14), (22, 14)),  # vertical
            segment(width, (14, 5), (14, 23)),  # horizontal
            segment(width, (6, 6), (21, 21)),  # diagonal
            segment(width, (6, 10), (22, 17)),  # oblique
            arc(width, 8.0, 20, 250),
            arc(width, 6.0, 0, 359),
        ]
    )
    got = measure(images, workers=1).thickness.to_numpy()
    # A binarised stroke is whole pixels wide at 4x scale and the skeleton's distance is taken
    # at pixel centres, so each reading is off by up to about half a pixel; a skeleton spur at
    # a round cap can pull one stroke a little further. The median must be tight.
    assert np.all(np.abs(got - width) <= 0.6), got
    assert abs(np.median(got) - width) <= 0.25, got


def test_thickness_is_monotone_and_unit_slope():
    widths = np.array([2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    images = np.stack([arc(w, 8.0, 30, 300) for w in widths])
    got = measure(images, workers=1).thickness.to_numpy()
    assert np.all(np.diff(got) > 0), got
    slope = np.polyfit(widths, got, 1)[0]
    assert 0.9 <= slope <= 1.1, slope


def test_thickened_and_thinned_digits(mnist_test):
    images, _ = mnist_test
    sample = images[:300]
    base = measure(sample, workers=1).thickness.to_numpy()
    thick = measure(ndimage.grey_dilation(sample, size=(1, 2, 2)), workers=1).thickness
    assert np.mean(thick.to_numpy() > base) >= 0.95
    assert 0.5 <= np.mean(thick.to_numpy() - base) <= 1.6

    bold = sample[base > 3.0]  # erosion only makes sense on strokes with room to lose
    bold_base = measure(bold, workers=1).thickness.to_numpy()
    thin = measure(ndimage.grey_erosion(bold, size=(1, 2, 2)), workers=1).thickness.to_numpy()
    assert np.mean(thin < bold_base) >= 0.95
    assert np.mean(bold_base - thin) >= 0.5


def test_broken_strokes_keep_thickness(mnist_test):
    images, labels = mnist_test
    ones = images[labels == 1][:100]
    broken = ones.copy()
    broken[:, 13:15, :] = 0  # cut every stroke across the middle
    before = measure(ones, workers=1)
    after = measure(broken, workers=1)
    assert np.abs(after.thickness - before.thickness).median() < 0.3
    assert (after.length < before.length).mean() >= 0.9


def test_blank_image_has_defined_result():
    out = measure(np.zeros((2, 28, 28), np.uint8), workers=1)
    assert (out.area == 0).all() and (out.length == 0).all()
    assert out[["thickness", "slant", "width", "height"]].isna().all().all()


def test_single_dot_is_measured():
    dot = np.zeros((1, 28, 28), np.uint8)
    dot[0, 14, 14] = 255
    out = measure(dot, workers=1).iloc[0]
    assert out.area > 0
    assert 0.5 < out.thickness < 2.5
    assert out.length < 2.0


def test_stroke_touching_border_uses_exact_definition():
    img = (segment(3.0, (0, 14), (27, 14)) * 255).astype(np.uint8)  # runs off top and bottom
    fast = measure(img[None], workers=1).iloc[0]
    ref = measure_one(img)
    for col in MEASURES:
        assert fast[col] == pytest.approx(ref[col], rel=1e-9, abs=1e-9), col
    assert np.isfinite(fast.thickness)


@pytest.fixture(scope="module")
def pooled_images(mnist_test) -> np.ndarray:
    return mnist_test[0][:POOLED]


@pytest.fixture(scope="module")
def measured_in_process(pooled_images) -> pd.DataFrame:
    return measure(pooled_images, workers=1)


def test_result_does_not_depend_on_worker_count(pooled_images, measured_in_process):
    assert morphometry._worker_count(2, len(pooled_images)) == 2  # the pool really runs
    two = measure(pooled_images, workers=2)
    pd.testing.assert_frame_equal(measured_in_process, two, check_exact=True)  # rows in order


def test_float_torch_and_uint8_inputs_agree(mnist_test):
    images = mnist_test[0][:50]
    as_uint8 = measure(images, workers=1)
    as_torch = measure(torch.from_numpy(images.astype(np.float32) / 255), workers=1)
    np.testing.assert_allclose(as_torch.area, as_uint8.area, atol=0.5)
    assert np.abs(as_torch.thickness - as_uint8.thickness).mean() < 0.05


def test_empty_batch_gives_empty_table():
    out = measure(np.zeros((0, 28, 28), np.uint8))
    assert list(out.columns) == list(MEASURES) and len(out) == 0


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros(784, np.uint8), r"shape \(n, H, W\); got shape \(784,\)"),
        (np.zeros((3, 784), np.uint8), r"reshape flat images to \(n, 28, 28\)"),
        (np.full((2, 28, 28), np.nan), r"2 NaN or infinite|1568 NaN or infinite"),
        (np.full((2, 28, 28), 3.0), r"float images must lie in \[0, 1\]"),
        (np.full((2, 28, 28), 300, np.int32), r"integer images must lie in \[0, 255\]"),
        (np.zeros((2, 2, 2), np.uint8), r"at least 3x3"),
        (np.array([[["a"] * 3] * 3]), r"must be numbers"),
    ],
)
def test_bad_input_gets_clear_error(images, message):
    with pytest.raises(ValueError, match=message):
        measure(images)


def test_nan_error_names_first_bad_image():
    images = np.zeros((5, 28, 28))
    images[3, 4, 4] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite values \(first in image 3\)"):
        measure(images)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"scale": 0}, "scale"),
        ({"bound_frac": -0.1}, "bound_frac"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MorphometryConfig(**kwargs)


def test_bad_worker_count_is_rejected():
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        measure(np.zeros((1, 28, 28), np.uint8), workers=0)


def _pooled_script(data: str, out: str) -> str:
    """A plain user script, with no ``if __name__ == "__main__":`` guard, measuring on 2 workers."""
    return (
        "import numpy as np\n"
        "from latentsteer import measure\n"
        "from latentsteer.domains.mnist.morphometry import _worker_count\n"
        f"images = np.load({data!r})\n"
        "assert _worker_count(2, len(images)) == 2\n"
        "table = measure(images, workers=2, progress=False)\n"
        f"np.save({out!r}, table.to_numpy())\n"
        "print('rows', len(table), 'thickness[:3]', table.thickness.to_numpy()[:3].tolist())\n"
    )


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_workers_need_no_main_guard(tmp_path, how, pooled_images, measured_in_process):
    """Like scikit-learn's n_jobs: a plain script, or one piped to ``python -``, just works."""
    np.save(tmp_path / "x.npy", pooled_images)
    script = _pooled_script(str(tmp_path / "x.npy"), str(tmp_path / "out.npy"))
    if how == "file":
        (tmp_path / "unguarded.py").write_text(script)
        cmd, stdin = [sys.executable, str(tmp_path / "unguarded.py")], None
    else:
        cmd, stdin = [sys.executable, "-"], script
    proc = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    expected = measured_in_process.thickness.to_numpy()[:3].tolist()
    assert proc.stdout.strip() == f"rows {POOLED} thickness[:3] {expected}"
    got = np.load(tmp_path / "out.npy")
    np.testing.assert_array_equal(got, measured_in_process.to_numpy())  # bit for bit, in order


def test_dead_worker_is_one_clear_error(monkeypatch):
    """A worker killed mid-run (say by the OOM killer) is reported, not a 'start-up' failure."""

    def die_in_worker(images, cfg):
        if multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return np.zeros((len(images), len(MEASURES)))

    monkeypatch.setattr(morphometry, "_measure_chunk", die_in_worker)
    with pytest.raises(LatentsteerError) as info:
        measure(np.zeros((POOLED, 28, 28), np.uint8), workers=2, progress=False)
    message = str(info.value)
    assert "a measuring worker process died" in message and "fewer workers" in message
    assert "SIGKILL" in message and "while starting" not in message
    assert len(message.splitlines()) == 1
