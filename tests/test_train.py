"""The training loop: learning, seeding, resume from a killed run, bad checkpoints."""

from __future__ import annotations

import pytest
import torch

from latentsteer.domains.mnist.domain import MNIST
from latentsteer.errors import LatentsteerError
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE
from latentsteer.train import Dataset, TrainConfig, fit

HEADS = (
    HeadSpec("digit", "class", "digit", classes=10, weight=5.0),
    HeadSpec("thickness", "regression", "thickness", weight=5.0),
)
CONFIG = ModelConfig(latent_dim=4, channels=8, hidden=64, head_hidden=32, heads=HEADS)


@pytest.fixture(scope="module")
def data(mnist_test) -> tuple[Dataset, Dataset]:
    images, labels = mnist_test
    x = torch.as_tensor(images[:2500], dtype=torch.float32) / 255
    y = torch.as_tensor(labels[:2500])
    # Stroke mass per image stands in for thickness: a real, learnable property.
    t = x.sum(dim=(1, 2)) / 100
    full = Dataset(x, {"digit": y, "thickness": t})
    train = Dataset(x[:2000], {k: v[:2000] for k, v in full.targets.items()})
    val = Dataset(x[2000:], {k: v[2000:] for k, v in full.targets.items()})
    return train, val


def new_model(train: Dataset) -> MultiHeadVAE:
    torch.manual_seed(0)
    model = MultiHeadVAE(CONFIG, MNIST)
    model.set_target_scaling(train.targets)
    return model


def test_fit_learns_and_reports_every_term(data):
    train, val = data
    history = fit(new_model(train), train, val, TrainConfig(epochs=3, batch_size=50, lr=3e-3),
                  progress=False)  # fmt: skip
    assert [h["epoch"] for h in history] == [1, 2, 3]
    keys = ["train_recon", "train_kl", "train_head_digit", "train_head_thickness"]
    keys += ["val_neg_elbo", "val_digit_accuracy", "val_thickness_r2", "val_thickness_mae"]
    for key in keys:
        assert key in history[0], key
    assert history[-1]["train_total"] < history[0]["train_total"]
    assert history[-1]["val_recon"] < history[0]["val_recon"]
    assert history[-1]["val_thickness_r2"] > 0.3


def test_same_seed_same_weights(data):
    train, val = data
    cfg = TrainConfig(epochs=1, batch_size=400)
    a, b = new_model(train), new_model(train)
    fit(a, train, val, cfg, progress=False)
    fit(b, train, val, cfg, progress=False)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, msg=k)


def test_resume_after_kill_matches_uninterrupted_run(data, tmp_path):
    train, val = data
    cfg = TrainConfig(epochs=3, batch_size=400)
    straight = new_model(train)
    fit(straight, train, val, cfg, progress=False)

    ckpt = tmp_path / "last.pt"

    def kill_after_first(epoch, _metrics):
        if epoch == 1:
            raise KeyboardInterrupt

    killed = new_model(train)
    with pytest.raises(KeyboardInterrupt):
        fit(killed, train, val, cfg, checkpoint=ckpt, on_epoch=kill_after_first, progress=False)
    assert ckpt.is_file()

    resumed = new_model(train)
    history = fit(resumed, train, val, TrainConfig(epochs=3, batch_size=400, resume=True),
                  checkpoint=ckpt, progress=False)  # fmt: skip
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for (k, va), vb in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(va, vb, msg=k)


def test_resume_refuses_other_params_and_damaged_files(data, tmp_path):
    train, val = data
    ckpt = tmp_path / "last.pt"
    fit(new_model(train), train, val, TrainConfig(epochs=1, batch_size=400), checkpoint=ckpt,
        progress=False)  # fmt: skip
    with pytest.raises(LatentsteerError, match="different model/train params"):
        fit(new_model(train), train, val, TrainConfig(epochs=1, batch_size=50, resume=True),
            checkpoint=ckpt, progress=False)  # fmt: skip
    ckpt.write_bytes(b"\x80\x04garbage")
    with pytest.raises(LatentsteerError, match="not a readable checkpoint"):
        fit(new_model(train), train, val, TrainConfig(epochs=1, batch_size=400, resume=True),
            checkpoint=ckpt, progress=False)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "train.epochs must be a positive integer"),
        ({"lr": 0.0}, "train.lr must be positive"),
        ({"device": "tpu"}, "train.device must be auto, cpu, cuda or cuda:N"),
        ({"limit": 0}, "train.limit"),
    ],
)
def test_bad_train_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)
