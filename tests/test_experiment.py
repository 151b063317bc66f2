"""One experiment end to end on a tiny model: settings, run, oracle metrics, files, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_context, tiny_model

from latentsteer.cli import main as cli
from latentsteer.domains.mnist.judge import Judge, JudgeConfig, save_judge
from latentsteer.experiment import (
    Context,
    ExperimentConfig,
    recorded_steps,
    run_experiment,
    write_results,
)
from latentsteer.goalspec import parse_goal
from latentsteer.model import save_model
from latentsteer.readout import readout
from latentsteer.rules import goal_rule


@pytest.fixture(scope="module")
def ctx(mnist_test) -> Context:
    return tiny_context(mnist_test, codes=200, reference=100)


def test_config_checks_values_and_goals():
    G = ["thickness=max"]
    with pytest.raises(ValueError, match="bad goal 'thick'"):
        ExperimentConfig(goals=["thick"])
    with pytest.raises(ValueError, match="at least one goal"):
        ExperimentConfig(goals=[])
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ExperimentConfig(goals=G, steps=0)
    with pytest.raises(ValueError, match="start it from images"):
        ExperimentConfig(goals=G, method="data_space", start="random:5")
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        ExperimentConfig(goals=G, confidence=1.0)
    # Named choices are checked when built in Python too, not only when read from YAML.
    with pytest.raises(ValueError, match="unknown method 'ga'; accepted: latent, data_space"):
        ExperimentConfig(goals=G, method="ga")
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; accepted: adam, sgd"):
        ExperimentConfig(goals=G, optimizer="rmsprop")
    assert "specs" not in ExperimentConfig(goals=["thickness=max"]).as_params()
    with pytest.raises(ValueError, match="goals must list at least one goal"):
        ExperimentConfig()


def test_oracle_success_rules():
    before = np.array([2.0, 2.0, 2.0, 2.0])
    after = np.array([1.9, 2.4, 3.1, 4.0])
    rule = lambda text: goal_rule(parse_goal(text), before, after, 0.5)[1].tolist()  # noqa: E731
    assert rule("thickness=max") == [False, True, True, True]
    assert rule("thickness=min") == [True, False, False, False]
    # Changes are -0.1, +0.4, +1.1, +2.0: +D must land within ±0.5 of D, both ways.
    assert rule("thickness=+1.5") == [False, False, True, True]
    assert rule("thickness=+0.5") == [False, True, False, False]  # +1.1 overshoots
    assert rule("thickness=-0.3") == [True, False, False, False]
    assert rule("thickness=4.0") == [False, False, False, True]
    assert rule("thickness=keep") == [True, True, False, False]


def test_recorded_steps_keep_first_and_last():
    assert recorded_steps(12, 5).tolist() == [0, 5, 10, 12]
    assert recorded_steps(10, 5).tolist() == [0, 5, 10]
    assert recorded_steps(3, 10).tolist() == [0, 3]


def test_mixed_readout_reads_classes_through_the_image():
    model = tiny_model()
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    mixed, code, cycle = (readout(model, k)(z) for k in ("mixed", "code", "cycle"))
    assert torch.equal(mixed["thickness"], code["thickness"])
    assert torch.equal(mixed["digit"], cycle["digit"])
    assert not torch.allclose(code["digit"], cycle["digit"])
    with pytest.raises(ValueError, match="unknown readout 'x'; accepted: code, cycle, mixed"):
        readout(model, "x")  # type: ignore[arg-type]


def test_latent_experiment_writes_verified_results(ctx, tmp_path):
    cfg = ExperimentConfig(goals=["thickness=+0.3", "digit=keep"], start="random:6", steps=7,
                           record_every=3, knn=0.1, proximity=0.01,
                           stop_when_satisfied=False, guide=False)  # fmt: skip
    out = run_experiment(cfg, ctx)
    write_results(out, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.png",
        "grid.png",
        "metrics.json",
        "trajectory.npz",
    ]  # fmt: skip  (no temporary files left behind)
    with np.load(tmp_path / "trajectory.npz") as f:
        assert f["step"].tolist() == [0, 3, 6, 7]
        assert f["images"].shape == (4, 6, 28, 28) and f["images"].dtype == np.float32
        assert f["images"].min() >= 0 and f["images"].max() <= 1
        assert f["z"].shape == (4, 6, 4)
        assert f["predicted_thickness"].shape == (4, 6)
        assert f["predicted_digit"].shape == (4, 6, 10)
        assert f["stop_reason"].tolist() == ["steps"] * 6
        # The frames are the decoded path at the recorded steps.
        z = torch.as_tensor(f["z"][-1])
        assert np.allclose(ctx.model.decode(z).detach().numpy(), f["images"][-1], atol=1e-5)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n"] == 6 and m["method"] == "latent"
    for key in ("success_rate", "predicted_success_rate", "success_thickness", "success_digit"):
        assert 0 <= m[key] <= 1, key
    assert m["success_gap"] == pytest.approx(m["predicted_success_rate"] - m["success_rate"])
    traj_pred = out.result.predicted["thickness"]
    assert m["thickness_predicted_change"] == pytest.approx(
        float((traj_pred[-1] - traj_pred[0]).mean()), abs=1e-5
    )
    measured = out.frame_reports[-1].measures.thickness.to_numpy()
    assert m["thickness_measured_end"] == pytest.approx(float(measured.mean()), abs=1e-5)
    assert m["thickness_gap"] == pytest.approx(
        float((traj_pred[-1].numpy() - measured).mean()), abs=1e-5
    )
    assert m["manifold_proximity_start"] == 0  # the start is its own anchor
    for name in ("prior", "knn", "cycle", "proximity"):
        assert f"manifold_{name}_start" in m and f"manifold_{name}_end" in m
    assert m["stopped_steps"] == 6 and m["model_calls"] == 8
    assert m["realism_start"] > 0 and m["realism_ratio"] > 0
    assert m["realism_matched_start"] > 0 and m["realism_matched_ratio"] > 0


def test_data_space_experiment_moves_pixels(ctx, tmp_path):
    cfg = ExperimentConfig(goals=["thickness=max"], method="data_space", start="test:0-3",
                           steps=4, lr=0.05, readout="code", record_every=2)  # fmt: skip
    out = run_experiment(cfg, ctx)
    images = out.result.images
    assert images.shape == (5, 4, 28, 28)
    assert not torch.equal(images[0], images[-1])
    assert torch.allclose(images[0], out.start.images)  # starts from the real images
    assert out.metrics["method"] == "data_space"
    assert (
        out.result.predicted["thickness"][-1].mean() > out.result.predicted["thickness"][0].mean()
    )
    write_results(out, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["n"] == 4


def test_verify_puts_predictions_next_to_measurements(ctx):
    cfg = ExperimentConfig(goals=["thickness=max"], start="random:5", steps=2)
    res = run_experiment(cfg, ctx).result
    v = res.verify(ctx.oracle, workers=1)
    assert list(v.table.columns) == [
        "predicted_digit", "judge_digit", "judge_confidence",
        "predicted_thickness", "measured_thickness",
    ]  # fmt: skip
    assert np.allclose(v.table.predicted_thickness, res.predicted["thickness"][-1].numpy())
    row = v.summary().set_index("head").loc["thickness"]
    assert row.gap == pytest.approx(
        (v.table.predicted_thickness - v.table.measured_thickness).mean()
    )


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    save_model(tiny_model(), root / "vae")
    torch.manual_seed(0)
    save_judge(Judge().eval(), root / "judge", {}, JudgeConfig())
    torch.manual_seed(1)
    cert = JudgeConfig(arch="allconv", seed=1)
    save_judge(Judge(arch="allconv").eval(), root / "certifier", {}, cert)
    return root


def _fake_data(monkeypatch, mnist_test) -> None:
    """Serve 300 test digits and a thickness table in place of the pipeline's data folders."""
    import pandas as pd

    import latentsteer.domains.mnist.steering_context as sc

    images, labels = mnist_test[0][:300], mnist_test[1][:300]
    table = pd.DataFrame({"thickness": np.linspace(1.5, 4.0, 300)})
    monkeypatch.setattr(sc, "load_split", lambda root, split: (images, labels))
    monkeypatch.setattr(sc, "read_labels", lambda root, split: table)


def _steer(folders, tmp_path, *extra: str) -> int:
    return cli([
        "steer", "--model", str(folders / "vae"), "--judge", str(folders / "judge"),
        "--certifier", str(folders / "certifier"),
        "--data", str(tmp_path / "no-data"), "--labels", str(tmp_path / "no-labels"),
        "--out", str(tmp_path / "out"), "--workers", "1",
        *extra,
    ])  # fmt: skip


def test_cli_steer_writes_the_stage_files(folders, tmp_path, monkeypatch, capsys, mnist_test):
    _fake_data(monkeypatch, mnist_test)
    code = _steer(folders, tmp_path, "--goal", "thickness=+0.2", "--goal", "digit=keep@2",
                  "--start", "random:4", "--steps", "3")  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("steered thickness=+0.2, digit=keep@2: 4 samples; oracle success ")
    assert "(certified by measures, certifier)" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "curves.png", "grid.png", "metrics.json", "trajectory.npz"
    ]  # fmt: skip
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["in_loop_oracles"] == "measures, judge"  # the default is the closed loop
    assert m["certified_by"] == "measures, certifier"


def test_cli_steer_flags_come_from_the_config(folders, tmp_path, monkeypatch, mnist_test):
    """Every ExperimentConfig field is a flag; flags not given keep the config's defaults."""
    from latentsteer.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["steer", "--goal", "digit=3", "--out", "x", "--no-guide",
                              "--patience", "none", "--oracle-tol", "thickness=0.3"])  # fmt: skip
    from latentsteer.config_flags import given

    assert given(args, args.config_fields) == {
        "guide": False, "patience": None, "oracle_tol": {"thickness": 0.3}
    }  # fmt: skip
    defaults = parser.parse_args(["steer", "--goal", "digit=3", "--out", "x"])
    assert given(defaults, defaults.config_fields) == {}
    fields = set(defaults.config_fields)
    assert {"tol", "confidence", "radius", "patience", "model_budget", "guide", "trust"} <= fields


def test_cli_steer_refuses_an_existing_file_as_out(folders, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    code = cli(["steer", "--model", str(folders / "vae"), "--goal", "digit=3",
                "--out", str(target)])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert err.strip().endswith(f"--out {target} is an existing file; give a folder")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--goal", "stroke=max"], "unknown property 'stroke'; this model has digit, thickness"),
        (["--goal", "thickness=99"], "thickness=99 is impossible for this model"),
        (["--goal", "thickness=lots"], "accepted: prop=max|min|VALUE"),
        (["--goal", "digit=max"], "accepted: digit=K or digit=keep"),
        (["--goal", "digit=3", "--start", "sample:4"], "bad start 'sample:4'; accepted: random:N"),
        (["--goal", "digit=3", "--start", "random:0"], "N must be at least 1"),
    ],
)
def test_cli_steer_errors_are_one_line(
    folders, tmp_path, monkeypatch, capsys, mnist_test, args, message
):
    _fake_data(monkeypatch, mnist_test)
    assert _steer(folders, tmp_path, *args) == 1
    err = capsys.readouterr().err
    assert err.startswith("latentsteer steer: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
