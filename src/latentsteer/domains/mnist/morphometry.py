"""Fast Morpho-MNIST measures for batches of images.

:func:`measure` gives the same numbers as :func:`~.morpho_reference.measure_one`
(Castro et al. 2019's definitions) but is built for tens of thousands of images:

* **Upscaling is two matrix products.** ``pyramid_expand`` is a separable linear filter
  (bicubic spline resize, then Gaussian) with one clip in between, so for a fixed size it is
  ``G · clip(R · X · Rᵀ) · Gᵀ``. ``R`` and ``G`` are built once by pushing impulses through the
  very scikit-image calls the reference uses, so the two paths cannot drift apart.
* **One medial axis per chunk, not per image.** ``skimage.morphology.medial_axis`` spends most
  of its ~12 ms per call building a 512-entry lookup table, not thinning. The binary images
  of a chunk are tiled into one mosaic with a one-pixel background gutter and thinned in one
  call. Thinning and the distance map only look at a pixel's 3×3 neighbourhood and its
  nearest background pixel, and the gutter is background, so every tile comes out as if it
  had been thinned alone. The one exception is ink touching the image border: alone, the
  border is not background for the distance map; in the mosaic it would be. Those images (a
  handful in all of MNIST) go through the per-image reference instead, so the definition
  holds exactly.
* **Moments and parallelogram CDFs are vectorised** over the chunk with ``bincount``.
* **Chunks run in worker processes**, one per core by default, through joblib's loky
  backend: its workers do not re-import the caller's ``__main__``, so a plain script with no
  ``if __name__ == "__main__":`` guard, a notebook or ``python -`` on stdin all just work, as
  with scikit-learn's ``n_jobs``.

Tie-breaking: ``medial_axis`` orders equally distant pixels with a seeded random permutation
over the pixels of one call, so an image's skeleton can depend on which other images share
its chunk. Chunks are fixed by ``chunk_size`` (not by the worker count), so a given input and
chunk size always give the same numbers. The effect on thickness is below 0.01 px on average.

Defined results at the edges:

* a blank (constant) image: area 0, length 0, the rest NaN;
* a single dot: measured like any other blob (a tiny skeleton, thickness of the dot);
* a stroke touching the border: measured by the reference definition (see above);
* NaN or infinite pixels, values outside [0, 1] (floats) or [0, 255] (integers), and arrays
  that are not ``(n, H, W)``: :class:`ValueError` naming the problem.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import re
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from scipy import ndimage
from skimage import morphology, transform
from tqdm.auto import tqdm

from latentsteer.domains.mnist.morpho_reference import (
    MEASURES,
    MEDIAL_AXIS_SEED,
    blank_result,
    skeleton_stats,
)
from latentsteer.errors import LatentsteerError

__all__ = ["MEASURES", "MorphometryConfig", "measure", "as_image_batch"]

# Below this many images a worker pool costs more to start than it saves.
_MIN_IMAGES_PER_WORKER = 512


@dataclass(frozen=True)
class MorphometryConfig:
    """How images are measured (mirrors ``params.yaml: labels``)."""

    threshold: float = 0.5  # binarise at this fraction between the upscaled min and max
    scale: int = 4  # upscaling factor for sub-pixel measures
    bound_frac: float = 0.02  # mass dropped by the bounding parallelogram, both sides together
    chunk_size: int = 128  # images per mosaic; fixes tie-breaking, so it changes results slightly

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1); got {self.threshold!r}")
        if not isinstance(self.scale, int) or not 1 <= self.scale <= 16:
            raise ValueError(f"scale must be an integer from 1 to 16; got {self.scale!r}")
        if not 0.0 <= self.bound_frac < 1.0:
            raise ValueError(f"bound_frac must be in [0, 1); got {self.bound_frac!r}")
        if not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer; got {self.chunk_size!r}")


def as_image_batch(images: object) -> np.ndarray:
    """Validate a batch of grey images and return it as uint8 or float64.

    Args:
        images: array-like or torch tensor ``(n, H, W)``; uint8/integers in [0, 255], bool, or
            floats in [0, 1].

    Returns:
        ``(n, H, W)`` uint8 array for integer/bool input, float64 in [0, 1] otherwise.

    Raises:
        ValueError: wrong shape, NaN/inf, or values out of range, with the culprit named.
    """
    if hasattr(images, "detach"):  # a torch tensor, possibly on the GPU
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim != 3:
        hint = ""
        if arr.ndim == 2 and int(np.sqrt(arr.shape[1])) ** 2 == arr.shape[1] > 1:
            side = int(np.sqrt(arr.shape[1]))
            hint = f" (reshape flat images to (n, {side}, {side}))"
        raise ValueError(f"images must have shape (n, H, W); got shape {arr.shape}{hint}")
    if arr.shape[1] < 3 or arr.shape[2] < 3:
        raise ValueError(f"images must be at least 3x3 pixels; got {arr.shape[1]}x{arr.shape[2]}")
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(
                f"integer images must lie in [0, 255]; found min {arr.min()}, max {arr.max()}"
            )
        return arr.astype(np.uint8, copy=False)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"images must be numbers; got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.argwhere(bad.reshape(len(arr), -1).any(axis=1))[0, 0])
        raise ValueError(
            f"images contain {int(bad.sum())} NaN or infinite values (first in image {first})"
        )
    # Decoders in float32 overshoot [0, 1] by rounding error; anything beyond that is a unit bug.
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 1.0)
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(
            f"float images must lie in [0, 1]; found min {lo:.4g}, max {hi:.4g} "
            "(divide 0-255 data by 255, or pass uint8)"
        )
    return np.clip(arr, 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _resize_operator(n: int, scale: int) -> np.ndarray:
    """Matrix of pyramid_expand's bicubic resize along one axis of length ``n``.

    Found by pushing impulses through the same ``skimage.transform.resize`` call that
    ``pyramid_expand`` makes (clipping off), so boundary mode and spline prefiltering match.

    Returns:
        ``(scale*n, n)``: column j is the response to an impulse at j.
    """
    eye = np.eye(n)[:, :, None].repeat(2, axis=2)  # (n, n, 2): impulses along axis 0
    out = transform.resize(
        eye, (scale * n, n, 2), order=3, mode="reflect", anti_aliasing=False, clip=False
    )
    return out[:, :, 0]


def _upscale_batch(images: np.ndarray, scale: int) -> np.ndarray:
    """``pyramid_expand(order=3)`` of every image, times 255, as the reference does it.

    Args:
        images: ``(n, H, W)`` uint8 or float64 in [0, 1].

    Returns:
        ``(n, scale*H, scale*W)`` float64 in [0, 255], floored for uint8 input.
    """
    rh = _resize_operator(images.shape[1], scale)
    rw = _resize_operator(images.shape[2], scale)
    x = images / 255.0 if images.dtype == np.uint8 else images  # (n, H, W)
    up = rh @ x @ rw.T  # (n, sH, sW)
    # resize clips to the input's range: the spline overshoots at sharp stroke edges.
    np.clip(up, x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True), out=up)
    # The same 1-D Gaussian passes that skimage.filters.gaussian makes, image by image.
    sigma = 2 * scale / 6.0  # pyramid_expand's default
    for axis in (1, 2):
        up = ndimage.gaussian_filter1d(up, sigma, axis=axis, mode="reflect")
    hires = 255.0 * up
    if images.dtype == np.uint8:
        hires = np.floor(hires)  # Morpho-MNIST casts the upscaled image back to uint8
    return hires


def _pack(boxes: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Shelf-pack rectangles into a mosaic with a one-pixel gutter around each.

    Args:
        boxes: ``(n, 2)`` heights and widths.

    Returns:
        ``(origins (n, 2), mosaic_height, mosaic_width)``; every rectangle has background on
        all four sides, the mosaic's outer edge included.
    """
    order = np.argsort(-boxes[:, 0], kind="stable")  # tallest first keeps shelves snug
    target = int(np.sqrt(((boxes + 1).prod(axis=1)).sum())) + 1
    target = max(target, int(boxes[:, 1].max()) + 2)
    origins = np.zeros_like(boxes)
    top, left, shelf, width = 1, 1, 0, 0
    for i in order:
        h, w = boxes[i]
        if left + w + 1 > target and left > 1:  # start a new shelf
            top, left, shelf = top + shelf + 1, 1, 0
        origins[i] = top, left
        left += w + 1
        shelf = max(shelf, h)
        width = max(width, left)
    return origins, top + shelf + 1, width


def _thin_mosaic(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skeleton statistics of many binary images from one medial-axis call.

    Each image is cropped to its ink's bounding box and packed into a mosaic (see
    :func:`_pack`), which roughly halves the pixels the distance transform has to visit.

    Args:
        binary: ``(n, h, w)`` bool, each with some ink and none on its border.

    Returns:
        ``(count, distance_sum, links)``, each ``(n,)``: skeleton pixels, the distance map
        summed over them, and the skeleton length through the 8-neighbour mask, all in
        upscaled pixels.
    """
    n = len(binary)
    rows_any = binary.any(axis=2)  # (n, h)
    cols_any = binary.any(axis=1)  # (n, w)
    r0 = rows_any.argmax(axis=1)
    r1 = rows_any.shape[1] - rows_any[:, ::-1].argmax(axis=1)
    c0 = cols_any.argmax(axis=1)
    c1 = cols_any.shape[1] - cols_any[:, ::-1].argmax(axis=1)
    boxes = np.stack([r1 - r0, c1 - c0], axis=1)
    origins, mh, mw = _pack(boxes)
    mosaic = np.zeros((mh, mw), dtype=bool)
    owner = np.full((mh, mw), -1, dtype=np.int64)  # which image each pixel came from
    for i in range(n):
        (y, x), (h, w) = origins[i], boxes[i]
        mosaic[y : y + h, x : x + w] = binary[i, r0[i] : r1[i], c0[i] : c1[i]]
        owner[y : y + h, x : x + w] = i
    skel, dist = morphology.medial_axis(mosaic, return_distance=True, rng=MEDIAL_AXIS_SEED)
    ys, xs = np.nonzero(skel)  # every skeleton pixel has a gutter pixel below and right
    s = skel.astype(np.float64)
    # SKELETON_LENGTH_MASK read at each skeleton pixel: right, down-left, down, down-right.
    links = (
        s[ys, xs + 1]
        + np.sqrt(2.0) * s[ys + 1, xs - 1]
        + s[ys + 1, xs]
        + np.sqrt(2.0) * s[ys + 1, xs + 1]
    )
    who = owner[ys, xs]
    count = np.bincount(who, minlength=n).astype(np.float64)
    distance_sum = np.bincount(who, weights=dist[ys, xs], minlength=n)
    link_sum = np.bincount(who, weights=links, minlength=n)
    return count, distance_sum, link_sum


def _parallelogram_sizes(
    hires: np.ndarray, shear: np.ndarray, y_mid: np.ndarray, bound_frac: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`~.morpho_reference.parallelogram_size` over a batch.

    A pixel counts towards the horizontal CDF at column ``t`` when
    ``x + 0.5 - shear·(y - y_mid) < t``, i.e. for every ``t`` from ``floor(...) + 1`` on; so the
    CDF is a cumulative sum of a weighted histogram of that first column.

    Args:
        hires: ``(n, h, w)`` grey images.
        shear, y_mid: ``(n,)`` horizontal shear and row centroid per image.
        bound_frac: mass dropped, both sides together.

    Returns:
        ``(width (n,), height (n,))`` in upscaled pixels.
    """
    n, h, w = hires.shape
    # Only inked pixels carry weight; most of the upscaled image is exactly zero.
    img, ys, xs = np.nonzero(hires)
    weight = hires[img, ys, xs]
    v = xs + 0.5 - shear[img] * (ys - y_mid[img])
    first = np.clip(np.floor(v).astype(np.int64) + 1, 0, w)  # column w means "never"
    hist = np.bincount(img * (w + 1) + first, weights=weight, minlength=n * (w + 1))
    hist = hist.reshape(n, w + 1)
    total = hires.sum(axis=(1, 2))  # (n,)
    hcdf = np.cumsum(hist, axis=1)[:, :w] / total[:, None]  # (n, w)
    rows = hires.sum(axis=2)  # (n, h)
    vcdf = np.concatenate([np.zeros((n, 1)), np.cumsum(rows, axis=1)[:, :-1]], axis=1)
    vcdf /= total[:, None]  # (n, h)
    half = bound_frac / 2
    width = np.empty(n)
    height = np.empty(n)
    cols, lines = np.arange(w), np.arange(h)
    for i in range(n):  # np.interp is 1-D; the loop is microseconds per image
        left, right = np.interp([half, 1.0 - half], hcdf[i], cols)
        top, bottom = np.interp([half, 1.0 - half], vcdf[i], lines)
        width[i], height[i] = right - left, bottom - top
    return width, height


def _measure_chunk(images: np.ndarray, cfg: MorphometryConfig) -> np.ndarray:
    """Measure one chunk in this process.

    Args:
        images: ``(n, H, W)`` validated batch (uint8 or float64 in [0, 1]).
        cfg: measurement settings.

    Returns:
        ``(n, 6)`` float64, columns in :data:`MEASURES` order.
    """
    n = len(images)
    out = np.full((n, len(MEASURES)), np.nan)
    flat = images.reshape(n, -1)
    inked = flat.max(axis=1) > flat.min(axis=1)
    out[~inked] = [blank_result()[k] for k in MEASURES]
    idx = np.flatnonzero(inked)
    if idx.size == 0:
        return out
    hires = _upscale_batch(images[idx], cfg.scale)  # (m, sH, sW)
    lo = hires.min(axis=(1, 2), keepdims=True)
    hi = hires.max(axis=(1, 2), keepdims=True)
    binary = hires >= lo + (hi - lo) * cfg.threshold  # (m, sH, sW)
    edge = (
        binary[:, 0, :].any(axis=1)
        | binary[:, -1, :].any(axis=1)
        | binary[:, :, 0].any(axis=1)
        | binary[:, :, -1].any(axis=1)
    )
    count = np.empty(len(idx))
    distance_sum = np.empty(len(idx))
    links = np.empty(len(idx))
    inner = ~edge
    if inner.any():
        count[inner], distance_sum[inner], links[inner] = _thin_mosaic(binary[inner])
    for j in np.flatnonzero(edge):  # rare in digit data: one medial-axis call each
        count[j], distance_sum[j], links[j] = skeleton_stats(binary[j])
    s = cfg.scale
    area = binary.sum(axis=(1, 2)) / s**2
    length = links / s
    with np.errstate(invalid="ignore", divide="ignore"):
        thickness = np.where(count > 0, 2.0 * distance_sum / count / s, np.nan)

    h, w = hires.shape[1:]
    y = np.arange(h, dtype=np.float64)
    x = np.arange(w, dtype=np.float64)
    row_mass = hires.sum(axis=2)  # (m, h)
    col_mass = hires.sum(axis=1)  # (m, w)
    m00 = row_mass.sum(axis=1)
    m01 = row_mass @ y / m00
    m10 = col_mass @ x / m00
    u02 = row_mass @ (y**2) / m00 - m01**2
    u11 = np.einsum("nyx,y,x->n", hires, y, x) / m00 - m10 * m01
    with np.errstate(invalid="ignore", divide="ignore"):
        shear = np.where(u02 > 0, u11 / u02, np.nan)
    slant = np.arctan(-shear)
    width = np.full(len(idx), np.nan)
    height = np.full(len(idx), np.nan)
    ok = np.isfinite(shear)
    if ok.any():
        width[ok], height[ok] = _parallelogram_sizes(hires[ok], shear[ok], m01[ok], cfg.bound_frac)
    out[idx] = np.stack([area, length, thickness, slant, width / s, height / s], axis=1)
    return out


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _worker_count(workers: int | None, n_images: int) -> int:
    if multiprocessing.parent_process() is not None:
        return 1  # already inside a worker: never nest pools
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if workers < 1:
        raise ValueError(f"workers must be a positive integer or None; got {workers!r}")
    return max(1, min(workers, n_images // _MIN_IMAGES_PER_WORKER))


def measure(
    images: object,
    workers: int | None = None,
    config: MorphometryConfig | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Morpho-MNIST measures of a batch of images.

    Args:
        images: ``(n, H, W)`` uint8 in [0, 255] or float in [0, 1] (numpy or torch).
        workers: processes to use; ``None`` means one per available core. Small batches run in
            this process whatever the value. Workers are joblib (loky) processes, which stay up
            for a few minutes to serve the next call; no ``__main__`` guard is needed.
        config: threshold, scale, parallelogram fraction and chunk size.
        progress: show a progress bar; ``None`` shows one for batches over 2 000 images.

    Returns:
        DataFrame with ``n`` rows in input order and the columns ``area`` (px²), ``length``
        (px), ``thickness`` (px), ``slant`` (radians, positive leaning right), ``width`` and
        ``height`` (px), all in the input's pixel units.

    Raises:
        ValueError: bad shape, dtype, range or NaNs, or bad ``workers``.
        LatentsteerError: a worker process died (killed, or out of memory).
    """
    cfg = config or MorphometryConfig()
    batch = as_image_batch(images)
    n = len(batch)
    n_workers = _worker_count(workers, n)
    show = progress if progress is not None else n > 2000
    parts = [batch[s] for s in _chunks(n, cfg.chunk_size)]
    bar = tqdm(total=n, unit="img", desc="measure", disable=not show, mininterval=2.0)
    results: list[np.ndarray] = []
    if n_workers == 1:
        for part in parts:
            results.append(_measure_chunk(part, cfg))
            bar.update(len(part))
    else:
        # One BLAS thread per worker: the chunks already keep every core busy, and results must
        # not depend on how BLAS splits its work. Chunks are small, so they are pickled to the
        # workers rather than memory-mapped through a temporary folder (max_nbytes=None).
        work = delayed(_measure_chunk)
        try:
            with parallel_config(backend="loky", inner_max_num_threads=1):
                run = Parallel(
                    n_jobs=n_workers, return_as="generator", batch_size=1, max_nbytes=None
                )
                for part, res in zip(parts, run(work(p, cfg) for p in parts), strict=True):
                    results.append(res)
                    bar.update(len(part))
        except BrokenProcessPool as exc:  # loky's TerminatedWorkerError is one
            codes = re.search(r"exit codes of the workers are (\{[^}]*\})", str(exc))
            how = f" (exit codes {codes.group(1)})" if codes else ""
            raise LatentsteerError(
                f"measure(): a measuring worker process died{how}, perhaps killed or out of "
                f"memory; use fewer workers (this call used {n_workers}; workers=1 runs in this "
                "process)"
            ) from None
    bar.close()
    values = np.concatenate(results) if results else np.empty((0, len(MEASURES)))
    return pd.DataFrame(values, columns=list(MEASURES))
