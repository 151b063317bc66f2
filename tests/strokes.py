"""Synthetic anti-aliased strokes of known width, for checking thickness off the data."""

from __future__ import annotations

import numpy as np

SIZE = 28
SUPERSAMPLE = 8


def _grid() -> tuple[np.ndarray, np.ndarray]:
    g = (np.arange(SIZE * SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    return np.meshgrid(g, g, indexing="ij")


def _coverage(inside: np.ndarray) -> np.ndarray:
    """Fraction of each pixel covered, from a supersampled mask: (28, 28) in [0, 1]."""
    s = SUPERSAMPLE
    return inside.astype(float).reshape(SIZE, s, SIZE, s).mean(axis=(1, 3))


def segment(width: float, p0: tuple[float, float], p1: tuple[float, float]) -> np.ndarray:
    """A straight stroke of ``width`` px from ``p0`` to ``p1`` (row, col), round caps."""
    yy, xx = _grid()
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    d = b - a
    t = np.clip(((yy - a[0]) * d[0] + (xx - a[1]) * d[1]) / (d @ d), 0.0, 1.0)
    dist = np.hypot(yy - (a[0] + t * d[0]), xx - (a[1] + t * d[1]))
    return _coverage(dist <= width / 2)


def arc(width: float, radius: float, start_deg: float, end_deg: float) -> np.ndarray:
    """A circular arc of ``width`` px around the image centre, with round caps."""
    yy, xx = _grid()
    cy = cx = SIZE / 2
    r = np.hypot(yy - cy, xx - cx)
    ang = np.degrees(np.arctan2(yy - cy, xx - cx)) % 360
    on_span = (ang >= start_deg) & (ang <= end_deg)
    dist = np.where(on_span, np.abs(r - radius), np.inf)
    for deg in (start_deg, end_deg):  # round caps: distance to each end point
        ey = cy + radius * np.sin(np.radians(deg))
        ex = cx + radius * np.cos(np.radians(deg))
        dist = np.minimum(dist, np.hypot(yy - ey, xx - ex))
    return _coverage(dist <= width / 2)
