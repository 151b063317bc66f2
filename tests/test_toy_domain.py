"""The domain contract end to end on a toy domain (tests/toy_domain.py), with no change to
shared code: train tiny, save and load, steer, verify with the domain's oracle, write
results, report, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from toy_domain import TOY, dataset, make_model, measure

import latentsteer
from latentsteer import registry, report
from latentsteer.cli import main
from latentsteer.errors import LatentsteerError
from latentsteer.model import ModelConfig, save_model
from latentsteer.train import TrainConfig, evaluate_split, fit


@pytest.fixture(scope="module")
def toy_folder(tmp_path_factory):
    """A tiny toy model, trained for a few seconds and saved as a model folder."""
    registry.register(TOY)
    model = make_model()
    train, val = dataset(2000, seed=0), dataset(300, seed=1)
    model.set_target_scaling(train.targets)
    cfg = TrainConfig(epochs=10, batch_size=64, lr=3e-3, shift=0, device="cpu")
    fit(model, train, val, cfg, progress=False)
    folder = tmp_path_factory.mktemp("toy") / "vae"
    save_model(model, folder, evaluate_split(model, val))
    return folder


def test_an_unknown_domain_is_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"unknown domain 'nowhere'; known: .*mnist"):
        ModelConfig(domain="nowhere")
    folder = tmp_path / "m"
    registry.register(TOY)
    save_model(make_model(), folder)
    config = json.loads((folder / "config.json").read_text())
    config["model"]["domain"] = "nowhere"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(LatentsteerError, match=r"unknown domain 'nowhere'"):
        latentsteer.load_model(folder)


def test_the_folder_names_its_domain_and_loads_back(toy_folder):
    config = json.loads((toy_folder / "config.json").read_text())
    assert config["model"]["domain"] == "toy"
    model = latentsteer.load_model(toy_folder)
    assert model.domain is TOY
    val = dataset(300, seed=1)
    metrics = evaluate_split(model, val)
    # The heads learned the exact properties: a broken contract (wrong likelihood, targets
    # scaled twice, encoder and decoder swapped) would not reach these.
    assert metrics["level_r2"] > 0.9 and metrics["slope_r2"] > 0.9
    assert metrics["rising_accuracy"] > 0.9
    with pytest.raises(ValueError, match=r"samples must have shape \(n, 16\)"):
        model.encode(torch.zeros(3, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        model.encode(torch.full((2, 16), float("nan")))


def test_steering_is_verified_by_the_domains_oracle(toy_folder, tmp_path):
    out = tmp_path / "run"
    outcome = latentsteer.steer(
        ["level=max", "rising=keep"], "random:32", model=toy_folder, out=out
    )
    m = outcome.metrics
    assert m["certified_by"] == "measures, slope rule"
    assert m["in_loop_oracles"] == "measures, slope rule"
    assert m["unverified_goals"] == ""
    # The oracle's numbers are the measures of the final samples, recomputed here.
    first, last = outcome.images[0], outcome.images[-1]  # (n, 16)
    change = measure(last).level.to_numpy() - measure(first).level.to_numpy()
    assert m["level_measured_change"] == pytest.approx(change.mean(), abs=1e-5)
    kept = (measure(last).slope.to_numpy() > 0) == (measure(first).slope.to_numpy() > 0)
    success = (change > 0) & kept
    assert m["success_rate"] == pytest.approx(success.mean())
    np.testing.assert_array_equal(outcome.per_sample["success"], success)
    # Truthful: the closed loop delivers what the oracle confirms, on nearly every sample.
    assert m["success_rate"] >= 0.9 and change.mean() > 0.3
    for name in ("trajectory.npz", "grid.png", "curves.png", "metrics.json"):
        assert (out / name).is_file()
    with np.load(out / "trajectory.npz") as t:
        assert t["images"].shape[1:] == (32, 16)


def test_the_oracle_budget_caps_every_start_through_the_runner(toy_folder):
    # level=max checks every 10 steps until no better frame comes: with a budget of 2 no
    # start is read more than twice, and each ends on a frame the oracle confirmed or on
    # its start (never on an unread frame).
    free = latentsteer.steer(["level=max"], "random:16", model=toy_folder, seed=3)
    capped = latentsteer.steer(["level=max"], "random:16", model=toy_folder, seed=3, budget=2)
    assert free.per_sample["oracle_calls"].max() > 2
    assert capped.per_sample["oracle_calls"].max() <= 2
    assert capped.metrics["oracle_calls"] == pytest.approx(capped.per_sample["oracle_calls"].mean())
    first, last = capped.images[0], capped.images[-1]
    gain = measure(last).level.to_numpy() - measure(first).level.to_numpy()
    assert ((gain > 0) | np.isclose(gain, 0, atol=1e-5)).all()
    with pytest.raises(ValueError, match="budget must be a positive integer; got 0"):
        latentsteer.steer(["level=max"], "random:4", model=toy_folder, budget=0)
    with pytest.raises(ValueError, match="similarity: not used by toy models"):
        latentsteer.steer(["level=max"], "random:4", model=toy_folder, similarity=0.5)


def test_a_band_goal_lands_within_tolerance(toy_folder):
    # The prior penalty's default weight (0.05) is sized for MNIST's 16-d codes; in this
    # 2-d code it holds samples short of the band, and the loop then returns their starts.
    m = latentsteer.steer(["level=+0.5"], "random:32", model=toy_folder, prior=0.0).metrics
    assert m["level_tol"] == 0.1  # the domain's tolerance, in its units
    assert m["level_within_tol"] >= 0.9
    assert m["level_measured_change"] == pytest.approx(0.5, abs=0.1)


def test_the_report_reads_the_domains_results(toy_folder, tmp_path):
    latentsteer.steer(["slope=min"], "random:16", model=toy_folder, out=tmp_path / "down")
    entries = report.collect(tmp_path, {"down": {"goals": ["slope=min"]}})
    row = report.table(entries).set_index("experiment").loc["down"]
    metrics = json.loads((tmp_path / "down" / "metrics.json").read_text())
    assert row["oracle_success"] == pytest.approx(metrics["success_rate"])
    assert row["measured_property"] == "slope"
    assert row["measured_change"] == pytest.approx(metrics["slope_measured_change"])
    assert row["measured_change"] < 0


def test_the_cli_takes_the_domain_from_the_folder(toy_folder, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["steer", "--model", str(toy_folder), "--goal", "slope=+0.4",
                 "--start", "random:8", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["slope_tol"] == 0.1 and metrics["n"] == 8
    code = main(["steer", "--model", str(toy_folder), "--goal", "level=max",
                 "--start", "test:0-3", "--out", str(tmp_path / "bad")])  # fmt: skip
    assert code != 0
    assert "bad start 'test:0-3'; accepted: random:N" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
