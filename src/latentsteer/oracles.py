"""Independent oracles: what a decoded image really is, never what the model says it is.

* Morpho-MNIST measures of the image (:func:`latentsteer.measure`).
* The judge's digit and confidence (a separately trained data-space CNN).
* Realism: the Fréchet distance between the judge's penultimate features of a set of images
  and those of real test digits (as FID does with Inception features). Lower is more
  realistic; a set of real digits scores near 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import linalg

from latentsteer.judge import Judge
from latentsteer.morphometry import measure


@dataclass
class OracleReport:
    """Oracle readings of ``n`` images.

    Attributes:
        measures: ``n`` rows of Morpho-MNIST measures.
        digit: ``(n,)`` the judge's digit.
        confidence: ``(n,)`` the judge's probability of that digit.
        probabilities: ``(n, 10)`` the judge's class probabilities.
    """

    measures: pd.DataFrame
    digit: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray


def read(images: torch.Tensor, judge: Judge, workers: int | None = None) -> OracleReport:
    """Measure and judge ``(n, 28, 28)`` images in [0, 1]."""
    x = images.detach().float().cpu().clamp(0, 1)
    probs = judge.probabilities(x).cpu().numpy()
    table = measure(x.numpy(), workers=workers, progress=False)
    return OracleReport(table, probs.argmax(1), probs.max(1), probs)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a (n, f)`` and ``b (m, f)``."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 samples on each side")
    mu_a, mu_b = a.mean(0), b.mean(0)
    # A small ridge keeps the product well conditioned when n is below the feature count.
    ridge = 1e-6 * np.eye(a.shape[1])
    cov_a = np.cov(a, rowvar=False) + ridge
    cov_b = np.cov(b, rowvar=False) + ridge
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    root = root.real  # numerical noise can add a tiny imaginary part
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * root))


def realism(images: torch.Tensor, reference: torch.Tensor, judge: Judge) -> float:
    """Fréchet distance in the judge's feature space from ``images`` to real ``reference``."""
    feats = judge.embed(images.detach().float().cpu()).cpu().numpy()
    ref = judge.embed(reference.detach().float().cpu()).cpu().numpy()
    return frechet_distance(feats, ref)
