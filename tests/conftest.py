"""Shared fixtures: real MNIST (verified, cached per user) and the official Morpho-MNIST table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from latentsteer.domains.mnist.datasets import mnist
from latentsteer.domains.mnist.domain import MNIST
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE

REPO = Path(__file__).resolve().parents[1]
EXCERPT_CSV = Path(__file__).parent / "data" / "original-t10k-morpho-first400.csv"
FULL_CSV = REPO.parent / "shared" / "reference" / "original-t10k-morpho.csv"


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """MNIST test split as uint8 ``(10000, 28, 28)`` and int64 labels."""
    images, labels = mnist("test")
    return np.rint(images * 255).astype(np.uint8), labels


@pytest.fixture(scope="session")
def official_morpho() -> pd.DataFrame:
    """The first 400 officially released Morpho-MNIST measures of the MNIST test set."""
    return pd.read_csv(EXCERPT_CSV)


@pytest.fixture(scope="session")
def official_morpho_full() -> pd.DataFrame:
    """All 10 000 official measures, from the shared reference folder (CI has it)."""
    if not FULL_CSV.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"reference table missing in CI: {FULL_CSV}")
        pytest.skip(f"reference table not found at {FULL_CSV}")
    return pd.read_csv(FULL_CSV)


TINY_HEADS = (
    HeadSpec("digit", "class", "digit", classes=10),
    HeadSpec("thickness", "regression", "thickness"),
)


def tiny_model(latent_dim: int = 4, head_hidden: int = 16) -> MultiHeadVAE:
    """A seeded, untrained model with a digit and a thickness head (training mean 2.5)."""
    torch.manual_seed(0)
    config = ModelConfig(
        latent_dim=latent_dim, channels=4, hidden=16, head_hidden=head_hidden, heads=TINY_HEADS
    )
    model = MultiHeadVAE(config, MNIST)
    model.set_target_scaling({"thickness": torch.tensor([1.0, 2.0, 3.0, 4.0])})
    return model.eval()


def tiny_context(mnist_test: tuple[np.ndarray, np.ndarray], codes: int, reference: int):
    """A steering Context over a tiny model and an untrained judge: the first ``codes`` test
    digits encoded as kNN codes, the next ``reference`` as the realism reference."""
    from latentsteer.domains.mnist.judge import Judge
    from latentsteer.domains.mnist.morphometry import measure
    from latentsteer.domains.mnist.oracle import DigitOracle
    from latentsteer.experiment import Context

    torch.manual_seed(0)
    model = tiny_model()
    images = torch.as_tensor(mnist_test[0][: codes + reference], dtype=torch.float32) / 255
    ref = images[codes:]
    thickness = measure(ref.numpy(), workers=1, progress=False).thickness.to_numpy()
    labels = np.asarray(mnist_test[1][codes : codes + reference])
    return Context(
        model,
        DigitOracle(Judge().eval()),
        ref,
        labels,
        thickness,
        model.encode(images[:codes]),
        None,
        1,
    )
