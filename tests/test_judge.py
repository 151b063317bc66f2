"""The independent judges: they learn from real pixels, round-trip, and refuse foreign folders.

Both architectures (the judge's ``lenet``, the certifier's ``allconv``) share one API and one
folder format; a folder records its architecture, and an old one without it is a LeNet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from latentsteer.config import load_params, section
from latentsteer.domains.mnist.domain import MNIST
from latentsteer.domains.mnist.judge import (
    CertifierConfig,
    Judge,
    JudgeConfig,
    accuracy,
    load_judge,
    save_judge,
    train_judge,
)
from latentsteer.errors import ConfigError, LatentsteerError
from latentsteer.model import ModelConfig, MultiHeadVAE, save_model

REPO = Path(__file__).resolve().parents[1]


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
    save_model(MultiHeadVAE(ModelConfig(), MNIST), tmp_path / "vae")
    with pytest.raises(LatentsteerError, match="is not a latentsteer.Judge/1 folder"):
        load_judge(tmp_path / "vae")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"epochs": 0}, "judge.epochs"), ({"lr": -1.0}, "judge.lr"), ({"shift": 9}, "judge.shift")],
)
def test_bad_judge_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        JudgeConfig(**kwargs)


@pytest.fixture(scope="module")
def tiny_allconv(tiny_judge):
    """An allconv judge after one epoch on 1 000 digits (the lenet fixture's data)."""
    _, x, y, _ = tiny_judge
    cfg = CertifierConfig(epochs=1, batch_size=16, lr=3e-3)
    return train_judge(x[:1000], y[:1000], cfg, torch.device("cpu"), progress=False), cfg


def test_allconv_learns_digits(tiny_allconv, tiny_judge):
    judge, cfg = tiny_allconv
    _, x, y, _ = tiny_judge
    assert judge.arch == cfg.arch == "allconv"
    torch.manual_seed(cfg.seed)
    untrained = Judge("allconv")
    assert accuracy(untrained, x[2500:], y[2500:]) < 0.3
    assert accuracy(judge, x[2500:], y[2500:]) > 0.5


def test_architectures_differ_but_share_the_api(tiny_judge):
    x = tiny_judge[1][:5]
    layers = {
        arch: {type(m) for m in Judge(arch).features.modules()} for arch in ("lenet", "allconv")
    }
    assert {nn.BatchNorm2d, nn.MaxPool2d, nn.ReLU} <= layers["lenet"]
    assert {nn.GroupNorm, nn.GELU} <= layers["allconv"]
    assert not {nn.BatchNorm2d, nn.MaxPool2d, nn.ReLU, nn.Linear} & layers["allconv"]
    for arch in ("lenet", "allconv"):
        judge = Judge(arch).eval()
        assert judge.embed(x).shape == (5, 128) == (5, judge.classify.in_features), arch
        assert judge.embed(x[:0]).shape == (0, 128), arch
        torch.testing.assert_close(judge.probabilities(x).sum(1), torch.ones(5))


def test_allconv_roundtrip(tiny_allconv, tiny_judge, tmp_path):
    judge, cfg = tiny_allconv
    x = tiny_judge[1][:8]
    save_judge(judge, tmp_path / "certifier", {"test_accuracy": 0.7}, cfg)
    config = json.loads((tmp_path / "certifier" / "config.json").read_text())["model"]
    assert config["arch"] == "allconv" and config["trained_with"]["seed"] == 1
    loaded = load_judge(tmp_path / "certifier")
    assert loaded.arch == "allconv"
    assert any(isinstance(m, nn.GroupNorm) for m in loaded.features.modules())
    assert torch.equal(loaded.probabilities(x), judge.probabilities(x))
    assert torch.equal(loaded.embed(x), judge.embed(x))


def test_folder_without_arch_loads_as_lenet(tiny_judge, tmp_path):
    judge, x, _, cfg = tiny_judge
    folder = tmp_path / "judge"
    save_judge(judge, folder, {}, cfg)
    meta = json.loads((folder / "config.json").read_text())
    assert meta["model"].pop("arch") == "lenet"
    del meta["model"]["trained_with"]["arch"]  # as written before there were two archs
    (folder / "config.json").write_text(json.dumps(meta))
    loaded = load_judge(folder)
    assert loaded.arch == "lenet"
    assert torch.equal(loaded.probabilities(x[:8]), judge.probabilities(x[:8]))


def test_folder_with_wrong_arch_is_refused(tiny_allconv, tmp_path):
    judge, cfg = tiny_allconv
    folder = tmp_path / "certifier"
    save_judge(judge, folder, {}, cfg)
    meta = json.loads((folder / "config.json").read_text())
    meta["model"]["arch"] = "lenet"  # allconv weights do not fit a LeNet
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(LatentsteerError, match="weights.pt does not fit"):
        load_judge(folder)
    meta["model"]["arch"] = "resnet"
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(LatentsteerError, match="bad model config .*'resnet'"):
        load_judge(folder)


ARCHS = "must be one of 'lenet', 'allconv'"


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (JudgeConfig, {"arch": "resnet"}, f"judge.arch {ARCHS}; got 'resnet'"),
        (CertifierConfig, {"arch": "vit"}, f"certifier.arch {ARCHS}; got 'vit'"),
        (CertifierConfig, {"epochs": 0}, "certifier.epochs must be a positive integer; got 0"),
        (CertifierConfig, {"shift": 9}, "certifier.shift must be from 0 to 6; got 9"),
    ],
)
def test_bad_config_is_one_line_naming_its_section(cls, kwargs, message):
    with pytest.raises(ValueError) as err:
        cls(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"arch": "vit"}, f"params.yaml: certifier.arch {ARCHS}; got 'vit'"),
        ({"lr": -1.0}, "params.yaml: certifier.lr must be positive; got -1.0"),
    ],
)
def test_certifier_params_errors_name_the_certifier(values, message):
    with pytest.raises(ConfigError) as err:
        section({"certifier": values}, "certifier", CertifierConfig)
    assert str(err.value) == message


def test_params_certifier_is_another_judge():
    params = load_params(REPO / "params.yaml")
    judge = section(params, "judge", JudgeConfig)
    certifier = section(params, "certifier", CertifierConfig)
    assert (judge.arch, certifier.arch) == ("lenet", "allconv")
    assert judge.seed != certifier.seed
    assert certifier == CertifierConfig()  # the dataclass defaults mirror params.yaml
