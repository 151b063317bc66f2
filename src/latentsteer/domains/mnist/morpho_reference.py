"""Morpho-MNIST measures, one image at a time: the plain reading of the definitions.

This is the slow, obviously-correct implementation. It follows Castro et al. (2019) step by
step with scikit-image and SciPy, one call per image. It exists for two reasons:

* tests check :func:`.morphometry.measure` (the fast, batched version) against it;
* ``benchmarks/bench_morphometry.py`` times both in the same run.

It is also the fallback the fast path uses for the rare image whose ink touches the border
(see :mod:`latentsteer.domains.mnist.morphometry`).

Definitions, on an ``(H, W)`` image:

1. Upscale by ``scale`` (4) with ``skimage.transform.pyramid_expand(order=3)``: bicubic spline
   resize, clipped to the input's range, then a Gaussian of sigma ``scale / 3``.  A ``uint8``
   input is brought back to ``uint8`` (``floor(255 * x)``), as Morpho-MNIST does; a float input
   stays float (``255 * x``).
2. Binarise at ``min + threshold * (max - min)`` of the upscaled image.
3. Skeleton and Euclidean distance map from ``skimage.morphology.medial_axis`` (seeded
   tie-breaking).
4. area = foreground pixels / scale²; length = skeleton length through an 8-neighbour mask /
   scale; thickness = 2 · mean(distance on skeleton) / scale; slant = arctan(-u11 / u02) from the
   grey-level second moments; width and height from a slant-sheared bounding parallelogram that
   drops ``bound_frac`` of the mass.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import morphology, transform

#: Column order of every measurement table.
MEASURES: tuple[str, ...] = ("area", "length", "thickness", "slant", "width", "height")

# Counts each skeleton link once: right, down-left, down and down-right neighbours, diagonal
# links weighted by sqrt(2).
SKELETON_LENGTH_MASK = np.array(
    [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [np.sqrt(2.0), 1.0, np.sqrt(2.0)]]
)

#: Seed of medial_axis' tie-breaking among equally distant pixels (Morpho-MNIST uses 42).
MEDIAL_AXIS_SEED = 42


def upscale(image: np.ndarray, scale: int = 4) -> np.ndarray:
    """Upscale one image the Morpho-MNIST way.

    Args:
        image: ``(H, W)`` uint8 in [0, 255] or float in [0, 1].
        scale: integer upscaling factor.

    Returns:
        ``(scale*H, scale*W)`` float64 image in [0, 255], floored to integers for uint8 input.
    """
    up = transform.pyramid_expand(image, upscale=scale, order=3, channel_axis=None)
    hires = 255.0 * up
    if image.dtype == np.uint8:
        hires = np.floor(hires)
    return hires


def binarise(hires: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Foreground mask at ``threshold`` of the way from the image's min to its max."""
    lo, hi = hires.min(), hires.max()
    return hires >= lo + (hi - lo) * threshold


def skeleton_stats(binary: np.ndarray) -> tuple[int, float, float]:
    """Skeleton statistics of one binary image, by ``medial_axis``.

    Args:
        binary: ``(h, w)`` bool foreground mask.

    Returns:
        ``(count, distance_sum, links)``: skeleton pixels, the distance map summed over them,
        and the skeleton length through :data:`SKELETON_LENGTH_MASK`, in pixels of ``binary``.
    """
    skeleton, distance = morphology.medial_axis(binary, return_distance=True, rng=MEDIAL_AXIS_SEED)
    skel = skeleton.astype(float)
    conv = ndimage.correlate(skel, SKELETON_LENGTH_MASK, mode="constant")
    return int(skeleton.sum()), float(distance[skeleton].sum()), float((conv * skel).sum())


def slant_from_moments(hires: np.ndarray) -> tuple[float, float, float]:
    """Return ``(slant, shear, y_centroid)`` from grey-level moments of one image."""
    img = hires.astype(float)
    y = np.arange(img.shape[0])[:, None]
    x = np.arange(img.shape[1])[None, :]
    m00 = img.sum()
    m10 = (x * img).sum() / m00
    m01 = (y * img).sum() / m00
    u11 = (x * y * img).sum() / m00 - m10 * m01
    u02 = (y**2 * img).sum() / m00 - m01**2
    shear = u11 / u02 if u02 > 0 else np.nan
    return float(np.arctan(-shear)), float(shear), float(m01)


def parallelogram_size(
    hires: np.ndarray, shear: float, y_mid: float, bound_frac: float = 0.02
) -> tuple[float, float]:
    """Width and height (in upscaled pixels) of the sheared bounding parallelogram.

    Columns are swept along lines of the image's own shear, rows horizontally; each side
    drops ``bound_frac / 2`` of the grey-level mass.
    """
    img = hires.astype(float)
    h, w = img.shape
    y = np.arange(h)[:, None]
    x = np.arange(w)[None, :]
    total = img.sum()
    hcdf = np.array([((x + 0.5 < t + shear * (y - y_mid)) * img).sum() for t in range(w)]) / total
    vcdf = np.array([((y < t) * img).sum() for t in range(h)]) / total
    half = bound_frac / 2
    left, right = np.interp([half, 1.0 - half], hcdf, np.arange(w))
    top, bottom = np.interp([half, 1.0 - half], vcdf, np.arange(h))
    return float(right - left), float(bottom - top)


def measure_one(
    image: np.ndarray, threshold: float = 0.5, scale: int = 4, bound_frac: float = 0.02
) -> dict[str, float]:
    """Measure one image by the Morpho-MNIST definitions, with no batching tricks.

    Args:
        image: ``(H, W)`` uint8 in [0, 255] or float in [0, 1]; assumed already validated.
        threshold: relative binarisation threshold.
        scale: upscaling factor.
        bound_frac: fraction of mass dropped by the bounding parallelogram.

    Returns:
        A dict with the keys of :data:`MEASURES`. A blank (constant) image gives area and
        length 0 and NaN for the rest.
    """
    if image.max() == image.min():
        return blank_result()
    hires = upscale(image, scale)
    binary = binarise(hires, threshold)
    count, distance_sum, links = skeleton_stats(binary)
    length = links / scale
    thickness = 2.0 * distance_sum / count / scale if count else np.nan
    slant, shear, y_mid = slant_from_moments(hires)
    if np.isnan(shear):
        width = height = np.nan
    else:
        width, height = parallelogram_size(hires, shear, y_mid, bound_frac)
    return {
        "area": float(binary.sum()) / scale**2,
        "length": length,
        "thickness": thickness,
        "slant": slant,
        "width": width / scale,
        "height": height / scale,
    }


def blank_result() -> dict[str, float]:
    """The defined result for an image with no ink: nothing to measure."""
    return {
        "area": 0.0,
        "length": 0.0,
        "thickness": np.nan,
        "slant": np.nan,
        "width": np.nan,
        "height": np.nan,
    }
