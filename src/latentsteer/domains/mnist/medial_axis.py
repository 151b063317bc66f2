"""The medial axis of a whole batch of binary images at once, as tensors (CPU or GPU).

It gives, image by image, exactly what ``skimage.morphology.medial_axis(image,
return_distance=True, rng=42)`` gives for that image alone: the same skeleton pixels and
the same Euclidean distance map. What scikit-image does for one image:

1. the distance of every foreground pixel to the nearest background pixel (the image's
   outside is *not* background);
2. an order over the foreground pixels: by distance, then by "cornerness" (background
   pixels in the 3×3 neighbourhood, the outside counting as background), then by a seeded
   random permutation of the pixels in row-major order;
3. one pass in that order: a pixel stays when a fixed 512-entry table says that removing
   it, given its 3×3 neighbourhood *at that moment*, would change the number of connected
   components, or it has at most two foreground pixels around it.

Step 3 is sequential, but a pixel's fate depends only on its eight neighbours: those
processed before it (lower in the order) have their final values, those after it are
still foreground. So every pixel whose earlier neighbours are all done can go at once:
the pass runs as a topological sort in rounds (Kahn's algorithm over the "earlier
neighbour" relation), each round one batched table lookup. Two pixels of one round are
never neighbours, so the result is the sequential one bit for bit. The rounds number about
the longest chain of neighbours rising in the order (a few tens for upscaled digits), not
the pixel count. The distance map is exact too: squared distances are integers, found by
the two-pass separable method (column distances, then the row-wise lower envelope
searched only as far as each pixel's own bound).

The per-image random permutation is drawn exactly as scikit-image draws it
(``numpy.random.default_rng(42).permutation(count)``), on the CPU: one small call per image.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy import ndimage

from latentsteer.domains.mnist.morpho_reference import MEDIAL_AXIS_SEED

# Neighbour (row, column) offsets and their bits in the 3×3 configuration index, numbered
# 0 1 2 / 3 4 5 / 6 7 8 row by row (bit 4 is the pixel itself), scikit-image's numbering.
_NEIGHBOURS = ((-1, -1, 1), (-1, 0, 2), (-1, 1, 4), (0, -1, 8),
               (0, 1, 32), (1, -1, 64), (1, 0, 128), (1, 1, 256))  # fmt: skip
_CENTRE = 16


def _pattern(index: int) -> np.ndarray:
    """The 3×3 bool neighbourhood that configuration ``index`` stands for."""
    return np.array([bool(index & (1 << k)) for k in range(9)]).reshape(3, 3)


@functools.lru_cache(maxsize=1)
def keep_table() -> np.ndarray:
    """``(512,)`` bool: whether a foreground pixel with this 3×3 configuration stays.

    It stays when removing it changes the number of 8-connected components of its
    neighbourhood, or when at most two pixels of the neighbourhood (itself included) are
    foreground: scikit-image's table, built once here rather than on every call.
    """
    eight = np.ones((3, 3), dtype=bool)
    table = np.zeros(512, dtype=bool)
    for index in range(512):
        if not index & _CENTRE:
            continue
        pattern = _pattern(index)
        without = _pattern(index & ~_CENTRE)
        splits = ndimage.label(pattern, eight)[1] != ndimage.label(without, eight)[1]
        table[index] = splits or pattern.sum() < 3
    return table


@functools.lru_cache(maxsize=4096)
def _tiebreak(count: int) -> np.ndarray:
    """scikit-image's tie-breaking ranks for an image with ``count`` foreground pixels."""
    return np.random.default_rng(MEDIAL_AXIS_SEED).permutation(np.arange(count))


def _run_distance(lines: torch.Tensor, along: torch.Tensor, size: int) -> torch.Tensor:
    """Distance to the nearest background pixel along a line, from runs of foreground.

    Args:
        lines: ``(m,)`` int64 line of each foreground pixel (image and row, or image and
            column), pixels sorted by line and then by ``along``.
        along: ``(m,)`` int64 position of each pixel on its line.
        size: the line's length; beyond its ends is not background.

    Returns:
        ``(m,)`` int64; ``4 size`` or more where the pixel's run spans the whole line.
    """
    far = 4 * size
    same = (lines[1:] == lines[:-1]) & (along[1:] == along[:-1] + 1)  # (m - 1,)
    first = torch.cat([same.new_ones(1), ~same])  # a run starts here
    last = torch.cat([~same, same.new_ones(1)])  # a run ends here
    run = torch.cumsum(first, 0) - 1
    lo = along[first].index_select(0, run)  # (m,): where each pixel's run starts and ends
    hi = along[last].index_select(0, run)
    before = torch.where(lo > 0, along - lo + 1, far)
    after = torch.where(hi < size - 1, hi - along + 1, far)
    return torch.minimum(before, after)


def squared_distance(binary: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Exact squared Euclidean distance to the nearest background pixel, at given pixels.

    As ``scipy.ndimage.distance_transform_edt`` of each image: the outside of the image is
    not background.

    Args:
        binary: ``(n, h, w)`` bool foreground.
        pixels: ``(3, m)`` int64 image, row and column of the foreground pixels, row-major
            image by image (``torch.nonzero`` order).

    Returns:
        ``(m,)`` int64 squared distances.
    """
    n, h, w = binary.shape
    b, y, x = pixels
    across = _run_distance(b * h + y, x, w)  # along the row
    bt, xt, yt = torch.nonzero(binary.transpose(1, 2)).T  # column-major
    down = _run_distance(bt * w + xt, yt, h)  # along the column
    # Squared column distances on the whole grid (0 on background), for the row search.
    column_sq = torch.zeros(n * h * w, dtype=torch.long, device=binary.device)
    column_sq[(bt * h + yt) * w + xt] = down * down
    flat = (b * h + y) * w + x
    # The nearest background pixel lies no farther along the row than the nearest one in
    # the same row, and no pixel k columns away beats a best below k²: the search along the
    # row (the lower envelope of the column distances) stops for each pixel there.
    best = torch.minimum(column_sq.index_select(0, flat), across * across)
    live = torch.arange(len(flat), device=binary.device)
    k = 1
    while live.numel():
        live = live[best.index_select(0, live) > k * k]
        if not live.numel():
            break
        at, col = flat.index_select(0, live), x.index_select(0, live)
        cand = best.index_select(0, live)
        for side, ok in ((at - k, col >= k), (at + k, col < w - k)):
            val = column_sq.index_select(0, side.clamp(0, len(column_sq) - 1)) + k * k
            cand = torch.where(ok, torch.minimum(cand, val), cand)
        best.index_copy_(0, live, cand)
        k += 1
    return best


def medial_axis(binary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Medial axis and distance map of every image of a batch (see the module docstring).

    Args:
        binary: ``(n, h, w)`` bool foreground masks, on any device.

    Returns:
        ``(pixels, on_axis, distance)``: ``pixels (3, m)`` int64 image, row and column of
        every foreground pixel (image by image, row-major); ``on_axis (m,)`` bool, whether
        the pixel is on the medial axis; ``distance (m,)`` float64, its Euclidean distance
        to the background.
    """
    n, h, w = binary.shape
    device = binary.device
    pixels = torch.nonzero(binary).T.contiguous()  # (3, m), row-major per image
    m = pixels.shape[1]
    d2 = squared_distance(binary, pixels)
    # Flat indices in a zero-padded copy, so every foreground pixel has eight neighbours.
    hp, wp = h + 2, w + 2
    flat = pixels[0] * (hp * wp) + (pixels[1] + 1) * wp + (pixels[2] + 1)  # (m,)
    where = torch.full((n * hp * wp,), -1, dtype=torch.long, device=device)
    where[flat] = torch.arange(m, device=device)
    offsets = torch.tensor([dy * wp + dx for dy, dx, _ in _NEIGHBOURS], device=device)
    bits = torch.tensor([bit for _, _, bit in _NEIGHBOURS], device=device)
    nb = where.index_select(0, (flat[:, None] + offsets).flatten()).view(m, 8)  # -1: background
    present = nb >= 0
    corner = 8 - present.sum(1)  # background pixels around, the outside counted
    # Tie-breaking ranks, drawn per image as scikit-image draws them.
    counts = torch.bincount(pixels[0], minlength=n).cpu().numpy()
    ties = np.concatenate([_tiebreak(int(c)) for c in counts]) if m else np.zeros(0, np.int64)
    tie = torch.as_tensor(ties, dtype=torch.long, device=device)
    key = (d2 * 16 + corner) * (h * w) + tie  # (m,): lexicographic (distance², corner, tie)
    safe = nb.clamp(min=0)
    earlier = present & (key.index_select(0, safe.flatten()).view(m, 8) < key[:, None])
    waiting = earlier.sum(1)  # earlier neighbours not yet processed
    later = present & ~earlier
    on_axis = torch.ones(m, dtype=torch.bool, device=device)
    table = torch.as_tensor(keep_table(), device=device)
    ready = torch.nonzero(waiting == 0).flatten()
    while ready.numel():
        # Earlier neighbours hold their final value, later ones are still foreground.
        around = safe.index_select(0, ready)  # (r, 8)
        lit = on_axis.index_select(0, around.flatten()).view(-1, 8) & present.index_select(0, ready)
        on_axis.index_copy_(0, ready, table.index_select(0, _CENTRE + (lit.long() * bits).sum(1)))
        nxt = around[later.index_select(0, ready)]  # later neighbours of this round's pixels
        waiting.index_add_(0, nxt, torch.full_like(nxt, -1))
        ready = torch.unique(nxt[waiting.index_select(0, nxt) == 0])
    return pixels, on_axis, d2.double().sqrt()
