"""What the oracles' readings say, for any domain: never what the model says a sample is.

A domain's :class:`~latentsteer.domain.Oracle` measures and judges decoded samples; this
module compares those readings with the heads (:func:`verify`) and scores realism: the
Fréchet distance between the judge's penultimate features of a set of samples and those of
real data (as FID does with Inception features). Lower is more realistic; a set of real
samples scores near 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import linalg

from latentsteer.domain import Oracle, OracleReport
from latentsteer.model import MultiHeadVAE


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
        root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real  # numerical noise can add a tiny imaginary part
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * root))


#: Samples per Fréchet score. The distance shrinks as the sample grows (a covariance of 100
#: samples in 128 features is rank deficient), so sets of different sizes are compared at
#: one fixed size: the mean over random subsets of this many samples.
FRECHET_N = 100


def frechet_at_fixed_n(
    a: np.ndarray, b: np.ndarray, n: int = FRECHET_N, repeats: int = 5, seed: int = 0,
    paired: bool = False,
) -> float:  # fmt: skip
    """Fréchet distance of ``n``-sample subsets of ``a (N, f)`` to ``b``, averaged.

    Args:
        a: the samples' features; ``N >= n`` (a smaller set is scored whole, and is not
            comparable with the others: the caller should avoid it).
        b: the reference's features, whole; or with ``paired`` one row per row of ``a``
            (a matched reference), subsampled with the same rows.
        repeats: subsets averaged (fewer when ``N < 2n`` leaves no room: one when ``N = n``).
        seed: seeds the subsets, so a score is reproducible.
    """
    if len(a) <= n:
        return frechet_distance(a, b)
    rng = np.random.default_rng(seed)
    draws = 1 if len(a) == n else repeats
    scores = []
    for _ in range(draws):
        rows = rng.choice(len(a), size=n, replace=False)
        scores.append(frechet_distance(a[rows], b[rows] if paired else b))
    return float(np.mean(scores))


def matched_reference(
    label: np.ndarray, value: np.ndarray, ref_label: np.ndarray, ref_value: np.ndarray
) -> np.ndarray:
    """For each sample, a real one of the same class with the nearest value of one measure.

    Steering changes *what* a set of samples is (all 3s, all thick); the plain realism score
    counts that change as unrealism. Comparing with real samples matched on class and the
    steered measure (MNIST: the judge's digit and the thickness) asks only whether they look
    like real samples *of that kind*. Each real sample is used once while its class has
    unused ones left, so a set of samples is compared with as varied a set of real ones as
    the reference allows (repeats would shrink the reference's spread and inflate the
    distance).

    Args:
        label: ``(n,)`` the judge's class of each sample.
        value: ``(n,)`` each sample's measured value (NaN matches any).
        ref_label, ref_value: ``(m,)`` the same for the real reference samples.

    Returns:
        ``(n,)`` indices into the reference.
    """
    out = np.empty(len(label), dtype=np.int64)
    used = np.zeros(len(ref_label), dtype=bool)
    for i, (d, t) in enumerate(zip(label, value, strict=True)):
        pool = np.flatnonzero(ref_label == d)
        if len(pool) == 0:
            pool = np.arange(len(ref_label))
        if not used[pool].all():
            pool = pool[~used[pool]]
        gap = np.abs(ref_value[pool] - t) if np.isfinite(t) else np.zeros(len(pool))
        out[i] = pool[np.argmin(gap)]
        used[out[i]] = True
    return out


def realism(samples: torch.Tensor, reference: torch.Tensor, oracle: Oracle) -> float:
    """Fréchet distance in the oracle's feature space from ``samples`` to real ``reference``."""
    feats = oracle.embed(samples.detach().float().cpu()).cpu().numpy()
    ref = oracle.embed(reference.detach().float().cpu()).cpu().numpy()
    return frechet_distance(feats, ref)


@dataclass
class Verification:
    """Predicted and measured properties of the same ``n`` images, side by side.

    Attributes:
        table: ``n`` rows. For each regression head whose label column the oracle
            measures: ``predicted_<head>`` and ``measured_<head>``; for each class head on
            the column its judge reads: ``predicted_<head>`` (argmax), ``judge_<head>`` and
            ``judge_confidence``.
        oracle: the raw oracle readings.
    """

    table: pd.DataFrame
    oracle: OracleReport

    def summary(self) -> pd.DataFrame:
        """One row per verified head: mean predicted, mean measured, mean gap and |gap|.

        For class heads ``predicted``/``measured`` are ``None`` and ``agreement`` is the
        share of images where head and judge read the same class.
        """
        rows = []
        for col in self.table.columns:
            if not col.startswith("predicted_"):
                continue
            head = col.removeprefix("predicted_")
            pred = self.table[col]
            if f"measured_{head}" in self.table:
                meas = self.table[f"measured_{head}"]
                gap = pred - meas
                rows.append({"head": head, "predicted": pred.mean(), "measured": meas.mean(),
                             "gap": gap.mean(), "abs_gap": gap.abs().mean()})  # fmt: skip
            else:
                agree = (pred == self.table[f"judge_{head}"]).mean()
                rows.append({"head": head, "agreement": agree})
        return pd.DataFrame(rows)


def verify(
    model: MultiHeadVAE,
    oracle: Oracle,
    samples: torch.Tensor,
    predicted: dict[str, torch.Tensor],
    workers: int | None = None,
) -> Verification:
    """Compare the model's predictions for ``samples (n, *sample_shape)`` with the oracle.

    Args:
        model: the model whose heads made ``predicted`` (for head kinds and columns).
        oracle: the domain's independent oracle.
        samples: decoded samples.
        predicted: head name → ``(n,)`` values or ``(n, k)`` probabilities for these samples.
        workers: processes for the measures (``None``: the oracle's choice).
    """
    report = oracle.read(samples, workers=workers)
    table = pd.DataFrame(index=range(len(samples)))
    for h in model.config.heads:
        p = predicted[h.name].detach().cpu()
        if h.kind == "regression" and h.column in report.measures.columns:
            table[f"predicted_{h.name}"] = p.numpy()
            table[f"measured_{h.name}"] = report.measures[h.column].to_numpy()
        elif h.kind == "class" and h.column == oracle.class_column:
            table[f"predicted_{h.name}"] = p.argmax(1).numpy()
            table[f"judge_{h.name}"] = report.label
            table["judge_confidence"] = report.confidence
    return Verification(table, report)
