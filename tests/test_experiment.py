"""One experiment end to end on a tiny model: settings, run, oracle metrics, files, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_context, tiny_model

from latentsteer.cli import main as cli
from latentsteer.domains.mnist.judge import Judge, JudgeConfig, save_judge
from latentsteer.domains.mnist.tolerances import TOLERANCE
from latentsteer.experiment import (
    Context,
    ExperimentConfig,
    recorded_steps,
    run_experiment,
    write_results,
)
from latentsteer.goalspec import parse_goal
from latentsteer.metrics_schema import check_metrics
from latentsteer.model import save_model
from latentsteer.oracles import frechet_at_fixed_n
from latentsteer.readout import readout
from latentsteer.rules import goal_rule


@pytest.fixture(scope="module")
def ctx(mnist_test) -> Context:
    return tiny_context(mnist_test, codes=200, reference=100)


def recomputed_goals(out) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per goal ``(oracle (n,), heads (n,))`` success of a run, recomputed from its first
    and last frames: the certifier's measures through ``goal_rule`` with the domain's
    tolerance (or ``oracle_tol``), the heads' predictions through the same rule; a class
    goal is met where the reading names the class asked for (``keep``: the start's, the true
    label for test digits and the certifier's reading of the decoded start otherwise; the
    heads keep their own class at the start, which holds without a closed loop: with one
    they keep the guide judge's reading)."""
    cfg, first, last = out.config, out.frame_reports[0], out.frame_reports[-1]
    guided = cfg.guide and cfg.method != "data_space"
    goals = {}
    for spec in cfg.specs:
        assert not (guided and spec.kind == "keep" and spec.prop == "digit")
        p0, p1 = (out.result.predicted[spec.prop][i].numpy() for i in (0, -1))
        if spec.prop == "thickness":
            tol = cfg.oracle_tol.get("thickness", TOLERANCE["thickness"])
            m0, m1 = first.measures.thickness.to_numpy(), last.measures.thickness.to_numpy()
            goals[spec.prop] = (goal_rule(spec, m0, m1, tol)[1], goal_rule(spec, p0, p1, tol)[1])
        else:
            if spec.kind == "keep":
                labels = out.start.labels
                want, want_heads = (first.label if labels is None else labels), p0.argmax(1)
            else:
                want = want_heads = int(spec.value)
            goals[spec.prop] = (last.label == want, p1.argmax(1) == want_heads)
    return goals


def check_against_samples(out, goals: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The run's metrics are the means of its per-sample verdicts and counts, and those
    verdicts are ``goals``' (every goal met); the common keys are all there."""
    m, per = out.metrics, out.per_sample
    check_metrics(m)
    ok = np.logical_and.reduce([good for good, _ in goals.values()])
    ok_heads = np.logical_and.reduce([heads for _, heads in goals.values()])
    assert per["success"].tolist() == ok.tolist()
    assert per["predicted_success"].tolist() == ok_heads.tolist()
    for prop, (good, heads) in goals.items():
        assert m[f"success_{prop}"] == pytest.approx(good.mean(), abs=1e-6), prop
        assert m[f"predicted_success_{prop}"] == pytest.approx(heads.mean(), abs=1e-6), prop
    # metrics.json rounds to 6 places
    assert m["success_rate"] == pytest.approx(per["success"].mean(), abs=1e-6)
    assert m["predicted_success_rate"] == pytest.approx(ok_heads.mean(), abs=1e-6)
    assert m["success_gap"] == pytest.approx(ok_heads.mean() - ok.mean(), abs=1e-6)
    assert m["success_gap"] == pytest.approx(
        m["predicted_success_rate"] - m["success_rate"], abs=2e-6
    )
    assert m["model_calls"] == pytest.approx(per["model_calls"].mean(), abs=1e-6)
    assert m["oracle_calls"] == pytest.approx(per["oracle_calls"].mean(), abs=1e-6)
    assert out.per_frame["success_by_frame"][-1] == pytest.approx(ok.mean())


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
    with pytest.raises(ValueError, match="unknown method 'magic'; accepted: latent, random_search"):
        ExperimentConfig(goals=G, method="magic")
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
    # oracle_tol 0.2: measured changes of 0.006 to 0.175 px split the samples (a change of
    # nothing would pass the default 0.5), while the heads' changes of about ±0.05 pass none.
    cfg = ExperimentConfig(goals=["thickness=+0.3", "digit=keep"], start="random:6", steps=7,
                           record_every=3, knn=0.1, proximity=0.01, oracle_tol={"thickness": 0.2},
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
        # The per-sample verdicts and counts on disk are the run's.
        for key in ("success", "predicted_success", "model_calls", "oracle_calls"):
            assert f[key].tolist() == out.per_sample[key].tolist(), key
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m == out.metrics
    assert m["n"] == 6 and m["method"] == "latent"
    assert m["goals"] == ["thickness=+0.3", "digit=keep"]
    assert m["in_loop_oracles"] == "none" and m["guide_success_rate"] is None  # guide: false
    goals = recomputed_goals(out)
    check_against_samples(out, goals)
    assert m["thickness_within_tol"] == pytest.approx(goals["thickness"][0].mean(), abs=1e-6)
    assert m["thickness_tol"] == 0.2
    assert 0 < m["success_rate"] < 1  # the recomputed verdicts are not all alike
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
    # Every safeguard's score, recomputed from its definition at the first and last code.
    model, codes = ctx.model, ctx.train_codes
    with torch.no_grad():
        for when, z in (("start", out.result.z[0]), ("end", out.result.z[-1])):
            near = torch.cdist(z, codes).topk(cfg.knn_k, dim=1, largest=False).values
            cycle = model.posterior(model.decode(z))[0]
            scores = {
                "prior": 0.5 * z.pow(2).sum(1),
                "knn": near.mean(1),
                "cycle": (cycle - z).pow(2).sum(1),
                "proximity": (model.decode(z) - model.decode(out.result.z[0])).pow(2).sum((1, 2)),
            }
            for name, score in scores.items():
                key = f"manifold_{name}_{when}"
                assert m[key] == pytest.approx(float(score.mean()), rel=1e-4, abs=1e-5), key
    assert m["stopped_steps"] == 6 and m["model_calls"] == 8
    assert m["realism_start"] > 0 and m["realism_ratio"] > 0
    assert m["realism_matched_start"] > 0 and m["realism_matched_ratio"] > 0
    # Realism and diversity: the Frechet distance to the reference, and the mean pairwise
    # distance, of the certifier's features of the first and last frames.
    scores = {}
    for when, images in (("start", out.images[0]), ("end", out.images[-1])):
        feats = out.per_sample[f"features_{when}"]
        np.testing.assert_allclose(feats, ctx.grader.embed(images).numpy(), atol=1e-5)
        scores[f"realism_{when}"] = frechet_at_fixed_n(feats, ctx.reference_features, seed=cfg.seed)
        scores[f"diversity_{when}"] = float(torch.pdist(torch.as_tensor(feats)).mean())
    for key, value in scores.items():
        assert m[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    for kind in ("realism", "diversity"):
        ratio = scores[f"{kind}_end"] / scores[f"{kind}_start"]
        assert m[f"{kind}_ratio"] == pytest.approx(ratio, rel=1e-5, abs=1e-6), kind
    # (the matched scores are rounded before the ratio is taken here: within 1e-3)
    ratio = m["realism_matched_end"] / m["realism_matched_start"]
    assert m["realism_matched_ratio"] == pytest.approx(ratio, rel=1e-3)


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
    assert out.metrics["in_loop_oracles"] == "none"  # no closed loop on pixels
    check_against_samples(out, recomputed_goals(out))
    write_results(out, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["n"] == 4


def test_verify_puts_predictions_next_to_measurements(ctx):
    cfg = ExperimentConfig(goals=["thickness=max"], start="random:5", steps=2)
    out = run_experiment(cfg, ctx)
    check_against_samples(out, recomputed_goals(out))
    assert out.metrics["oracle_calls"] > 0  # the closed loop read the samples
    res = out.result
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
    assert "(certified by measures (scikit-image), certifier)" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "curves.png", "grid.png", "metrics.json", "trajectory.npz"
    ]  # fmt: skip
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["in_loop_oracles"] == "measures (tensors), judge"  # the default is the closed loop
    assert m["certified_by"] == "measures (scikit-image), certifier"
    check_metrics(m)
    assert m["n"] == 4 and m["goals"] == ["thickness=+0.2", "digit=keep@2"]
    # The summary is the per-sample file's means, and the printed line says the same.
    with np.load(tmp_path / "out" / "trajectory.npz") as f:
        success, heads = f["success"], f["predicted_success"]
        assert m["model_calls"] == pytest.approx(f["model_calls"].mean(), abs=1e-6)
        assert m["oracle_calls"] == pytest.approx(f["oracle_calls"].mean(), abs=1e-6)
        assert m["guide_success_rate"] == pytest.approx(f["guide_success"].mean(), abs=1e-6)
    assert m["success_rate"] == pytest.approx(success.mean(), abs=1e-6)
    assert m["predicted_success_rate"] == pytest.approx(heads.mean(), abs=1e-6)
    assert m["success_gap"] == pytest.approx(heads.mean() - success.mean(), abs=1e-6)
    assert f"oracle success {success.mean():.1%} " in out
    assert f"heads' success {heads.mean():.1%}" in out


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
