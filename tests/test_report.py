"""The report's grouping, shared-start comparison, findings and files, on made-up results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentsteer import report


def _result(folder, success, calls, frames_success, method_calls, predicted=None, change=1.0):
    folder.mkdir(parents=True)
    n = len(success)
    metrics = {
        "n": n, "success_rate": float(np.mean(success)),
        "predicted_success_rate": predicted if predicted is not None else float(np.mean(success)),
        "thickness_measured_change": change, "thickness_gap": 0.25,
        "realism_matched_ratio": 1.1, "realism_ratio": 1.5, "diversity_ratio": 0.9,
        "model_calls": method_calls, "wall_s": 3.0,
    }  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    np.savez(
        folder / "trajectory.npz",
        images=np.zeros((len(calls), n, 28, 28), np.float32),
        success=np.array(success, bool),
        success_by_frame=np.array(frames_success, float),
        calls_by_frame=np.array(calls, float),
    )


@pytest.fixture
def results(tmp_path):
    # The ascent: 8 starts, 6 succeed; it reaches 50% after 11 calls, 75% after 31.
    _result(tmp_path / "up", [1, 1, 1, 0, 1, 1, 0, 1], [1, 11, 21, 31], [0, 0.5, 0.6, 0.75], 31)
    # CMA-ES on the same 8 starts: 4 succeed (the first four: 3 of them on shared starts).
    _result(tmp_path / "up_cmaes", [1, 1, 0, 1, 0, 0, 0, 1], [1, 100, 200], [0, 0.3, 0.5], 200)
    # BO on the first 4 of those starts: all succeed there.
    _result(tmp_path / "up_bo", [1, 1, 1, 1], [1, 40], [0, 1.0], 40)
    # Pixels: the heads say 100%, the oracles 25%.
    _result(tmp_path / "px", [1, 0, 0, 0], [1, 5], [0, 0.25], 5, predicted=1.0)
    experiments = {
        "up": {"start": "random:8", "seed": 0},
        "up_cmaes": {"task": "up", "method": "cmaes", "start": "random:8", "seed": 0},
        "up_bo": {"task": "up", "method": "bayesopt", "start": "random:4", "seed": 0},
        "px": {"method": "data_space", "start": "test:0-3"},
    }
    return report.collect(tmp_path, experiments)


def test_groups_by_task_and_compares_on_shared_starts(results):
    assert {t: [e.name for e in g] for t, g in report.tasks(results).items()} == {
        "up": ["up", "up_cmaes", "up_bo"], "px": ["px"]
    }  # fmt: skip
    shared = report.shared_success(report.tasks(results)["up"])
    assert shared == {"up": 0.75, "up_cmaes": 0.75, "up_bo": 1.0}
    frame = report.table(results)
    row = frame.set_index("experiment").loc["up_bo"]
    assert row.starts == 4 and row.oracle_success == 1.0 and row.model_calls == 40
    assert np.isnan(frame.set_index("experiment").loc["px"].success_on_shared_starts)


def test_starts_of_different_seeds_are_not_compared(results):
    group = report.tasks(results)["up"]
    group[2].seed = 5
    assert report.shared_success(group) == {}


def test_findings_state_measured_numbers(results):
    claims = report.findings(results)
    assert claims[0] == (
        "`px` (ascent on pixels): the heads report 100.0% success, the oracles measure 25.0%."
    )
    # The best baseline on shared starts is BO (100%), which the ascent does not match.
    assert claims[1].startswith(
        "`up`: latent gradient ascent (up) falls short of the best gradient-free baseline, "
        "bayesopt (up_bo), on the 4 shared starts: 75.0% against 100.0% oracle success, "
        "with 31 against 40 model calls per sample"
    )
    assert report.calls_to_reach(results[0], 0.6) == 21
    assert report.calls_to_reach(results[0], 0.9) is None


def test_markdown_and_summary(results):
    frame = report.table(results)
    md = report.markdown(frame, report.findings(results), {"up": "http://x/#/runs/1"})
    assert "| up | [up](http://x/#/runs/1) | latent | 8 | 75.0% |" in md
    assert (
        "| px | px | data_space | 4 | 25.0% | 100.0% | – | – | – | – | – | +1.00 | +0.25 | 1.10× |"
        in md
    )
    summary = report.summary(frame)
    assert summary["up_cmaes"]["oracle_success"] == 0.5
    assert json.loads(json.dumps(summary))["px"]["success_on_shared_starts"] is None
    curves = report.curve_table(results)
    assert len(curves) == 4 + 3 + 2 + 2 and curves.success.max() == 1.0


def test_missing_results_name_the_experiment(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results for experiment 'gone'"):
        report.collect(tmp_path, {"gone": {}})


def test_missing_results_are_one_line_from_the_stage(tmp_path, capsys):
    from latentsteer.errors import run_reporting

    code = run_reporting("report", lambda: report.collect(tmp_path, {"gone": {}}))
    err = capsys.readouterr().err
    assert code == 1 and err.strip() == (
        f"report: error: no results for experiment 'gone' in {tmp_path / 'gone'} "
        "(run dvc repro optimize@gone)"
    )
    code = run_reporting(
        "report", lambda: report.collect(tmp_path, {"d1": {}}, stage="group@digits")
    )
    assert code == 1 and capsys.readouterr().err.strip().endswith("(run dvc repro group@digits)")


def test_replicates_give_the_seed_mean_and_worst(tmp_path):
    for name, ok in (("up", [1, 1, 1, 1]), ("up_s1", [1, 1, 0, 1]), ("up_s2", [1, 0, 0, 1])):
        _result(tmp_path / name, ok, [1, 5], [0, float(np.mean(ok))], 5)
    experiments = {
        "up": {"start": "random:4"},
        "up_s1": {"replicate": "up", "start": "random:4", "seed": 1},
        "up_s2": {"replicate": "up", "start": "random:4", "seed": 2},
    }
    entries = report.collect(tmp_path, experiments)
    assert [e.name for g in report.tasks(entries).values() for e in g] == ["up"]
    row = report.table(entries).set_index("experiment").loc["up"]
    assert row.seeds == 3
    assert row.oracle_success_seed_mean == pytest.approx((1 + 0.75 + 0.5) / 3)
    assert row.oracle_success_worst_seed == 0.5
    with pytest.raises(ValueError, match="up_s3: replicate 'gone' is not an experiment"):
        _result(tmp_path / "up_s3", [1], [1], [1.0], 1)
        report.seeds(report.collect(tmp_path, {**experiments, "up_s3": {"replicate": "gone"}}))


def test_heads_and_oracles_disagreeing_is_a_finding(results):
    claims = report.truth_findings(results)
    assert claims == [
        "`px` (data_space): the heads claim 100.0%, the oracles certify 25.0% (+75.0%)."
    ]


def _entry(name: str, metrics: dict) -> report.Entry:
    n = metrics["n"]
    return report.Entry(name, name, "latent", f"random:{n}", 0, metrics, np.ones(n, bool),
                        np.ones(1), np.ones(1), np.zeros(0), np.zeros(0))  # fmt: skip


def test_a_finding_adds_the_confident_starts_where_the_metrics_count_them():
    metrics = {"n": 10, "success_rate": 0.6, "predicted_success_rate": 1.0,
               "ambiguous_starts": 4, "success_rate_confident": 5 / 6,
               "predicted_success_rate_confident": 1.0}  # fmt: skip
    unsplit = {k: v for k, v in metrics.items() if k != "predicted_success_rate_confident"}
    none_sure = {**metrics, "ambiguous_starts": 10, "success_rate_confident": float("nan"),
                 "predicted_success_rate_confident": float("nan")}  # fmt: skip
    close = {**metrics, "success_rate": 0.97}  # within 5 points: no finding at all
    claims = report.truth_findings(
        [_entry("a", metrics), _entry("b", unsplit), _entry("c", none_sure), _entry("d", close)]
    )
    assert claims == [
        "`a` (latent): the heads claim 100.0%, the oracles certify 60.0% (+40.0%). "
        "On the 6 confident starts: 100.0% against 83.3% (+16.7%).",
        "`b` (latent): the heads claim 100.0%, the oracles certify 60.0% (+40.0%).",
        "`c` (latent): the heads claim 100.0%, the oracles certify 60.0% (+40.0%).",
    ]


def test_pooled_realism_compares_pooled_ends_with_pooled_starts(tmp_path):
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(400, 4))
    near, far = rng.normal(size=(200, 4)), rng.normal(loc=2.0, size=(200, 4))
    a = report.Entry("a", "a", "latent", "random:200", 0, {}, np.ones(200, bool), np.ones(1),
                     np.ones(1), np.zeros(0), np.zeros(0), features_start=near,
                     features_end=far)  # fmt: skip
    b = report.Entry("b", "b", "latent", "random:200", 0, {}, np.ones(200, bool), np.ones(1),
                     np.ones(1), np.zeros(0), np.zeros(0), features_start=near,
                     features_end=near)  # fmt: skip
    from latentsteer.oracles import frechet_distance

    both_near = frechet_distance(np.concatenate([near, near]), reference)
    expect = frechet_distance(np.concatenate([far, near]), reference) / both_near
    assert report.pooled_realism([a, b], reference) == pytest.approx(expect)
    assert report.pooled_realism([b], reference) == pytest.approx(1.0)
    b.features_end = None
    assert report.pooled_realism([a, b], reference) is None
