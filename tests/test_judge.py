"""The independent judge: it learns from real pixels, round-trips, and refuses foreign folders."""

from __future__ import annotations

import pytest
import torch

from latentsteer.errors import LatentsteerError
from latentsteer.judge import JudgeConfig, accuracy, load_judge, save_judge, train_judge
from latentsteer.model import MultiHeadVAE, save_model


@pytest.fixture(scope="module")
def tiny_judge(mnist_test):
    images, labels = mnist_test
    x = torch.as_tensor(images[:3000], dtype=torch.float32) / 255
    y = torch.as_tensor(labels[:3000])
    cfg = JudgeConfig(epochs=3, batch_size=64, lr=2e-3, seed=0)
    return train_judge(x[:2500], y[:2500], cfg, torch.device("cpu"), progress=False), x, y, cfg


def test_judge_learns_digits(tiny_judge):
    judge, x, y, _ = tiny_judge
    assert accuracy(judge, x[2500:], y[2500:]) > 0.85
    probs = judge.probabilities(x[:5])
    torch.testing.assert_close(probs.sum(1), torch.ones(5))
    assert judge.embed(x[:5]).shape == (5, 128)


def test_judge_roundtrip(tiny_judge, tmp_path):
    judge, x, _, cfg = tiny_judge
    save_judge(judge, tmp_path / "judge", {"test_accuracy": 0.9}, cfg)
    loaded = load_judge(tmp_path / "judge")
    torch.testing.assert_close(loaded.probabilities(x[:8]), judge.probabilities(x[:8]))


def test_vae_folder_is_not_a_judge(tmp_path):
    save_model(MultiHeadVAE(), tmp_path / "vae")
    with pytest.raises(LatentsteerError, match="is not a latentsteer.Judge/1 folder"):
        load_judge(tmp_path / "vae")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"epochs": 0}, "judge.epochs"), ({"lr": -1.0}, "judge.lr"), ({"shift": 9}, "judge.shift")],
)
def test_bad_judge_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        JudgeConfig(**kwargs)
