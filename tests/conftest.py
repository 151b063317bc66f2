"""Shared fixtures: real MNIST (verified, cached per user) and the official Morpho-MNIST table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentsteer.datasets import mnist

REPO = Path(__file__).resolve().parents[1]
REFERENCE_CSV = REPO.parent / "shared" / "reference" / "original-t10k-morpho.csv"


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """MNIST test split as uint8 ``(10000, 28, 28)`` and int64 labels."""
    images, labels = mnist("test")
    return np.rint(images * 255).astype(np.uint8), labels


@pytest.fixture(scope="session")
def official_morpho() -> pd.DataFrame:
    """The officially released Morpho-MNIST measures of the MNIST test set."""
    if not REFERENCE_CSV.is_file():
        pytest.skip(f"reference table not found at {REFERENCE_CSV}")
    return pd.read_csv(REFERENCE_CSV)
