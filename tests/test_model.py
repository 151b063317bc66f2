"""MultiHeadVAE's public contract, saving and loading, and its errors."""

from __future__ import annotations

import pickle

import pytest
import torch
from conftest import TINY_HEADS, tiny_model

from latentsteer.domains.mnist.domain import MNIST
from latentsteer.errors import LatentsteerError
from latentsteer.loading import load_model
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE, save_model


@pytest.fixture
def model() -> MultiHeadVAE:
    return tiny_model(latent_dim=6, head_hidden=8)


def test_contract_shapes_and_ranges(model):
    x = torch.rand(5, 28, 28)
    z = model.encode(x)
    assert z.shape == (5, 6)
    img = model.decode(z)
    assert img.shape == (5, 28, 28) and img.min() >= 0 and img.max() <= 1
    pred = model.predict(z)
    assert set(pred) == {"digit", "thickness"}
    assert pred["digit"].shape == (5, 10)
    torch.testing.assert_close(pred["digit"].sum(1), torch.ones(5))
    assert pred["thickness"].shape == (5,)


def test_regression_predictions_are_in_original_units(model):
    last = model.heads["thickness"][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)  # standardised output 0 -> the training mean
    pred = model.predict(torch.randn(3, 6))["thickness"]
    torch.testing.assert_close(pred, torch.full((3,), 2.5))


def test_predict_and_decode_are_differentiable(model):
    z = torch.zeros(2, 6, requires_grad=True)
    (model.predict(z)["thickness"].sum() + model.decode(z).sum()).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_sample_prior_is_seeded(model):
    torch.testing.assert_close(model.sample_prior(4, seed=3), model.sample_prior(4, seed=3))
    assert not torch.equal(model.sample_prior(4, seed=3), model.sample_prior(4, seed=4))
    assert model.sample_prior(7).shape == (7, 6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.encode(torch.rand(3, 784)), r"images must have shape \(n, 28, 28\)"),
        (lambda m: m.encode(torch.full((1, 28, 28), float("nan"))), "NaN"),
        (lambda m: m.encode(torch.full((1, 28, 28), 255.0)), r"must lie in \[0, 1\]"),
        (lambda m: m.decode(torch.zeros(2, 5)), r"z must have shape \(n, 6\)"),
        (lambda m: m.predict(torch.full((1, 6), float("inf"))), "NaN or infinite"),
        (lambda m: m.standardise("colour", torch.zeros(1)), "unknown head 'colour'"),
    ],
)
def test_bad_input_gets_clear_error(model, call, message):
    with pytest.raises(ValueError, match=message):
        call(model)


def test_save_load_roundtrip(model, tmp_path):
    save_model(model, tmp_path / "vae", {"val_recon": 1.0})
    loaded = load_model(tmp_path / "vae")
    z = torch.randn(4, 6)
    torch.testing.assert_close(loaded.decode(z), model.decode(z))
    torch.testing.assert_close(loaded.predict(z)["thickness"], model.predict(z)["thickness"])
    assert loaded.config == model.config
    assert sorted(p.name for p in (tmp_path / "vae").iterdir()) == [
        "config.json", "metrics.json", "weights.pt"
    ]  # fmt: skip


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "weights.pt").write_bytes(b"garbage"), "not a readable weights file"),
        (lambda d: (d / "weights.pt").write_bytes(pickle.dumps(_Evil())), "not a readable"),
        (lambda d: (d / "config.json").write_text("{"), "not valid JSON"),
        (lambda d: (d / "config.json").write_text('{"format": "other/1"}'), "format: 'other/1'"),
        (lambda d: (d / "weights.pt").unlink(), "not a model folder"),
    ],
)
def test_damaged_or_foreign_folder_gets_one_line(model, tmp_path, damage, message):
    save_model(model, tmp_path / "vae")
    damage(tmp_path / "vae")
    with pytest.raises(LatentsteerError, match=message) as err:
        load_model(tmp_path / "vae")
    assert "\n" not in str(err.value)


def test_weights_that_do_not_fit_config(model, tmp_path):
    save_model(model, tmp_path / "a")
    other = MultiHeadVAE(
        ModelConfig(latent_dim=3, channels=4, hidden=16, head_hidden=8, heads=TINY_HEADS), MNIST
    )
    save_model(other, tmp_path / "b")
    (tmp_path / "a" / "weights.pt").write_bytes((tmp_path / "b" / "weights.pt").read_bytes())
    with pytest.raises(LatentsteerError, match="does not fit"):
        load_model(tmp_path / "a")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "my head"}, "identifier"),
        ({"name": "x", "kind": "ordinal"}, "kind must be class or regression"),
        ({"name": "x", "kind": "class", "classes": 1}, "classes must be at least 2"),
        ({"name": "x", "weight": -1.0}, "weight must be >= 0"),
    ],
)
def test_bad_head_spec(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HeadSpec(**kwargs)


def test_duplicate_head_names_rejected():
    with pytest.raises(ValueError, match="names must be unique"):
        ModelConfig(heads=(TINY_HEADS[0], TINY_HEADS[0]))


def test_folders_name_their_domain_and_older_ones_load_as_mnist(model, tmp_path):
    import json

    import latentsteer

    save_model(model, tmp_path / "new")
    config = json.loads((tmp_path / "new" / "config.json").read_text())
    assert config["model"]["domain"] == "mnist"
    # A folder written before domains existed has no entry: it is an MNIST model, and its
    # weights (same names, same layer order) load into the same network.
    del config["model"]["domain"]
    (tmp_path / "new" / "config.json").write_text(json.dumps(config))
    old = latentsteer.load_model(tmp_path / "new")
    assert old.domain.name == "mnist"
    z = model.sample_prior(3, seed=2)
    with torch.no_grad():
        assert torch.equal(old.decode(z), model.decode(z))
    keys = set(old.state_dict())
    assert {"encoder.0.weight", "encoder.7.bias", "decoder.0.weight", "decoder.7.bias"} <= keys
