"""Morpho-MNIST measures of a whole batch as tensors, on the images' own device.

The same definitions as :func:`~.morpho_reference.measure_one` (Castro et al. 2019), computed
for the whole batch in one tensor program, and only for the measures asked for:

1. **Upscaling** is two matrix products per axis, ``G · clip(R · X · Rᵀ) · Gᵀ``, where ``R``
   (bicubic spline resize) and ``G`` (the Gaussian) are built once by pushing impulses
   through the very scikit-image and SciPy calls the reference makes; float64, so the
   upscaled images match the reference to rounding (about 1e-13 of the range).
2. **Binarisation** at half range, image by image.
3. **Medial axis and distance map** by :func:`~.medial_axis.medial_axis`: bit for bit what
   ``skimage.morphology.medial_axis`` gives each image alone, tie-breaking included. (The
   CPU path of :func:`~.morphometry.measure` thins a mosaic of many images in one call, so
   its tie-breaking depends on the neighbours in the mosaic; this path does not.)
4. **Area, length, thickness** from the axis; **slant** from the grey-level moments;
   **width and height** from the sheared bounding parallelogram (the vectorised code of
   :mod:`.morphometry`, on the CPU).

Only what the requested measures need is computed: thickness alone skips the moments and
the parallelogram, slant alone skips the medial axis.

On the CPU the batch is measured in parts of 64 images, ``threads`` of them side by side:
most of the work is index gathers that torch runs on one core, and torch releases the
interpreter lock while it works. Parts never change a result (every image is measured on
its own).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from latentsteer.domains.mnist.medial_axis import medial_axis
from latentsteer.domains.mnist.morpho_reference import MEASURES, blank_result
from latentsteer.domains.mnist.morphometry import (
    MorphometryConfig,
    _parallelogram_sizes,
    _resize_operator,
    as_image_batch,
)

__all__ = ["measure_tensors", "needs"]

# Which intermediate each measure needs.
_AXIS = {"length", "thickness"}
_MOMENTS = {"slant", "width", "height"}


def needs(properties: Sequence[str]) -> tuple[str, ...]:
    """The measures among ``properties`` (others, like ``digit``, are not measures), in
    :data:`MEASURES` order."""
    return tuple(m for m in MEASURES if m in set(properties))


@functools.lru_cache(maxsize=8)
def _gaussian_operator(n: int, sigma: float) -> np.ndarray:
    """``(n, n)`` matrix of ``gaussian_filter1d(·, sigma, mode="reflect")`` on length ``n``,
    built from impulses through the same SciPy call ``pyramid_expand`` makes."""
    return ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0, mode="reflect")


def upscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """``pyramid_expand(order=3)`` of every image, times 255, as the reference does it.

    Args:
        images: ``(n, H, W)`` uint8, or float in [0, 1].

    Returns:
        ``(n, scale·H, scale·W)`` float64 in [0, 255], floored for uint8 input.
    """
    dev = images.device
    x = images.double() / 255.0 if images.dtype == torch.uint8 else images.double()
    rh = torch.as_tensor(_resize_operator(x.shape[1], scale), device=dev)
    rw = torch.as_tensor(_resize_operator(x.shape[2], scale), device=dev)
    up = rh @ x @ rw.T  # (n, sH, sW)
    # The spline overshoots at sharp edges; resize clips to each input's range.
    up = torch.clamp(up, x.amin((1, 2), keepdim=True), x.amax((1, 2), keepdim=True))
    sigma = 2 * scale / 6.0  # pyramid_expand's default
    gh = torch.as_tensor(_gaussian_operator(up.shape[1], sigma), device=dev)
    gw = torch.as_tensor(_gaussian_operator(up.shape[2], sigma), device=dev)
    hires = 255.0 * (gh @ up @ gw.T)
    return hires.floor() if images.dtype == torch.uint8 else hires


def _measure_part(
    images: torch.Tensor, wanted: tuple[str, ...], cfg: MorphometryConfig
) -> dict[str, torch.Tensor]:
    """The ``wanted`` measures of ``images (n, H, W)`` with some ink each; ``(n,)`` float64
    tensors on the CPU."""
    n, s = len(images), cfg.scale
    hires = upscale(images, s)  # (n, sH, sW)
    lo = hires.amin((1, 2), keepdim=True)
    hi = hires.amax((1, 2), keepdim=True)
    binary = hires >= lo + (hi - lo) * cfg.threshold
    out: dict[str, torch.Tensor] = {}
    if "area" in wanted:
        out["area"] = binary.sum((1, 2)).double() / s**2
    if _AXIS & set(wanted):
        pixels, on_axis, distance = medial_axis(binary)
        owner = pixels[0][on_axis]  # (k,): the image of each axis pixel
        count = torch.bincount(owner, minlength=n).double()
        if "thickness" in wanted:
            total = torch.zeros(n, dtype=torch.float64, device=binary.device)
            total.index_add_(0, owner, distance[on_axis])
            out["thickness"] = torch.where(count > 0, 2.0 * total / count / s, torch.nan)
        if "length" in wanted:
            out["length"] = _axis_length(binary.shape, pixels[:, on_axis], n) / s
    if _MOMENTS & set(wanted):
        h, w = hires.shape[1:]
        y = torch.arange(h, dtype=torch.float64, device=hires.device)
        x = torch.arange(w, dtype=torch.float64, device=hires.device)
        rows = hires.sum(2)  # (n, h)
        cols = hires.sum(1)  # (n, w)
        m00 = rows.sum(1)
        m01 = rows @ y / m00
        m10 = cols @ x / m00
        u02 = rows @ (y * y) / m00 - m01**2
        u11 = torch.einsum("nyx,y,x->n", hires, y, x) / m00 - m10 * m01
        shear = torch.where(u02 > 0, u11 / u02, torch.nan)
        out["slant"] = torch.arctan(-shear)
        if {"width", "height"} & set(wanted):
            ok = torch.isfinite(shear)
            width = torch.full((n,), torch.nan, dtype=torch.float64)
            height = torch.full((n,), torch.nan, dtype=torch.float64)
            if bool(ok.any()):
                sizes = _parallelogram_sizes(
                    hires[ok].cpu().numpy(), shear[ok].cpu().numpy(), m01[ok].cpu().numpy(),
                    cfg.bound_frac,
                )  # fmt: skip
                mask = ok.cpu()
                width[mask] = torch.from_numpy(sizes[0])
                height[mask] = torch.from_numpy(sizes[1])
            out["width"], out["height"] = width / s, height / s
    return {k: out[k].cpu() for k in wanted}


def _axis_length(shape: torch.Size, axis: torch.Tensor, n: int) -> torch.Tensor:
    """Skeleton length through the reference's 8-neighbour mask: each axis pixel counts its
    right, down-left, down and down-right axis neighbours, diagonals by √2.

    Args:
        shape: ``(n, h, w)`` of the binary images.
        axis: ``(3, k)`` image, row and column of the axis pixels.

    Returns:
        ``(n,)`` float64 lengths in upscaled pixels.
    """
    _, h, w = shape
    hp, wp = h + 2, w + 2
    grid = torch.zeros(n * hp * wp, dtype=torch.float64, device=axis.device)
    flat = axis[0] * (hp * wp) + (axis[1] + 1) * wp + (axis[2] + 1)
    grid[flat] = 1.0
    r2 = float(np.sqrt(2.0))
    links = (grid[flat + 1] + r2 * grid[flat + wp - 1] + grid[flat + wp]
             + r2 * grid[flat + wp + 1])  # fmt: skip
    length = torch.zeros(n, dtype=torch.float64, device=axis.device)
    return length.index_add_(0, axis[0], links)


def _default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def measure_tensors(
    images: object,
    properties: Sequence[str] = MEASURES,
    config: MorphometryConfig | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """The ``properties`` among the Morpho-MNIST measures of a batch, as tensors.

    Args:
        images: ``(n, H, W)`` uint8 in [0, 255] or float in [0, 1]: numpy, or a torch tensor
            on any device (the work runs there).
        properties: the measures wanted (names that are not measures are ignored).
        config: threshold, scale and parallelogram fraction (``chunk_size`` is not used:
            every image is measured on its own).
        threads: on the CPU, parts of the batch measured side by side (``None``: one per
            core).

    Returns:
        DataFrame with ``n`` rows in input order and one column per requested measure, in
        :data:`MEASURES` order and units (see :func:`~.morphometry.measure`); a blank
        image gives area and length 0 and NaN for the rest.

    Raises:
        ValueError: bad shape, dtype, range or NaNs (as :func:`~.morphometry.measure`).
    """
    cfg = config or MorphometryConfig()
    wanted = needs(properties)
    batch = _as_tensor_batch(images)
    n = len(batch)
    table = pd.DataFrame({k: np.full(n, np.nan) for k in wanted}, columns=list(wanted),
                         index=range(n))  # fmt: skip
    if not wanted or not n:
        return table
    flat = batch.reshape(n, -1)
    inked = (flat.amax(1) > flat.amin(1)).cpu().numpy()
    blank = blank_result()
    for k in wanted:
        table.loc[~inked, k] = blank[k]
    idx = np.flatnonzero(inked)
    if not idx.size:
        return table
    threads = threads if threads is not None else _default_threads()
    parts = _split(idx, threads, batch.device)
    work = [(batch[torch.as_tensor(p, device=batch.device)], wanted, cfg) for p in parts]
    if len(work) == 1 or threads == 1:
        results = [_measure_part(*w) for w in work]
    else:
        with ThreadPoolExecutor(min(threads, len(work))) as pool:
            results = list(pool.map(lambda a: _measure_part(*a), work))
    for p, res in zip(parts, results, strict=True):
        for k in wanted:
            table.loc[p, k] = res[k].numpy()
    return table


# Images per part on the CPU: the medial axis gathers neighbours through index maps of the
# whole part, and past about this many images those maps leave the cache (measured on a
# 2-core AMD EPYC: 0.8 ms an image in parts of 64, 1.0 to 1.6 in parts of 128 to 1 000).
_PART = 64


def _split(idx: np.ndarray, threads: int, device: torch.device) -> list[np.ndarray]:
    if threads < 1:
        raise ValueError(f"threads must be a positive integer or None; got {threads!r}")
    if device.type != "cpu":
        return [idx]  # one program on the accelerator
    return [idx[i : i + _PART] for i in range(0, len(idx), _PART)]


def _as_tensor_batch(images: object) -> torch.Tensor:
    """Validate a batch as :func:`~.morphometry.as_image_batch` does, keeping a tensor on
    its device; returns uint8 or float64."""
    if isinstance(images, torch.Tensor) and images.device.type != "cpu":
        x = images.detach()
        if x.dim() != 3:
            as_image_batch(np.zeros(tuple(x.shape)))  # raises with the usual message
        if x.dtype == torch.uint8:
            return x
        if x.dtype == torch.bool:
            return x.to(torch.uint8) * 255
        if not x.is_floating_point():
            return torch.as_tensor(as_image_batch(x.cpu().numpy()), device=x.device)
        bad = ~torch.isfinite(x)
        lo, hi = (float(x.min()), float(x.max())) if x.numel() else (0.0, 1.0)
        if bool(bad.any()) or lo < -1e-4 or hi > 1 + 1e-4:
            as_image_batch(x.cpu().numpy())  # raises, naming the problem
        return x.double().clamp(0.0, 1.0)
    return torch.from_numpy(as_image_batch(images))
