"""The real DVC pipeline, end to end, on tiny params in a temporary copy of the repo."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from tiny_pipeline import (
    ALL_TINY,
    MOLECULE_PROPERTY_STAGES,
    OPTIMIZE_STAGES,
    PROPERTY_STAGES,
    TINY_GROUPS,
    TINY_MOLECULE_EXPERIMENTS,
    copy_repo,
    dvc,
    run,
    tiny_env,
)

from latentsteer import MEASURES, MorphometryConfig, measure
from latentsteer.domains.mnist.judge import load_judge
from latentsteer.loading import load_model
from latentsteer.metrics_schema import check_metrics

OPTIMIZE = OPTIMIZE_STAGES
MOLECULE_STEER = tuple(f"molecules_steer@{n}" for n in TINY_MOLECULE_EXPERIMENTS)
MOLECULES = ("molecules_download", "molecules_labels", "molecules_train", "molecules_evaluate",
             *MOLECULE_STEER, "molecules_report")  # fmt: skip


def stages_run(stdout: str) -> list[str]:
    """Stages ``dvc repro`` ran, from its ``Running stage '...'`` lines."""
    return re.findall(r"Running stage '([^']+)'", stdout)


def stages_named(status: str) -> list[str]:
    """Stages ``dvc status`` names as changed (its unindented ``name:`` lines)."""
    return re.findall(r"^(\S+):$", status, flags=re.M)


def load_test_digits(repo: Path) -> tuple[torch.Tensor, np.ndarray]:
    """The tiny repo's test digits in [0, 1] and their labels, as the stages read them."""
    from latentsteer.domains.mnist.datasets import load_split

    images, digits = load_split(repo / "data" / "raw", "test")
    return torch.as_tensor(images, dtype=torch.float32) / 255, digits


def check_evaluate_report(repo: Path) -> None:
    """``reports/evaluate.json`` and its thickness plot are those of ``models/vae`` and
    ``models/judge`` on the test split: recomputed here from the saved files."""
    report = json.loads((repo / "reports" / "evaluate.json").read_text())
    x, digits = load_test_digits(repo)
    labels = pd.read_parquet(repo / "data" / "labels" / "test.parquet")
    assert np.array_equal(labels.digit, digits)
    model, judge = load_model(repo / "models" / "vae"), load_judge(repo / "models" / "judge")
    with torch.no_grad():
        pred = model.predict(model.encode(x))
    assert report["n_images"] == len(x) == 150
    heads = np.mean(pred["digit"].argmax(1).numpy() == digits)
    assert report["digit_accuracy"] == pytest.approx(heads, abs=1e-12)
    judged = np.mean(judge.probabilities(x).argmax(1).numpy() == digits)
    assert report["judge_accuracy_on_originals"] == pytest.approx(judged, abs=1e-12)
    with torch.no_grad():  # reconstructions: decoded posterior means
        recon = model.decode(model.encode(x))
    judged = np.mean(judge.probabilities(recon).argmax(1).numpy() == digits)
    assert report["judge_accuracy_on_reconstructions"] == pytest.approx(judged, abs=1e-12)
    thick, predicted = labels.thickness.to_numpy(), pred["thickness"].double().numpy()
    ok = np.isfinite(thick)
    resid = predicted[ok] - thick[ok]
    r2 = 1 - (resid**2).sum() / ((thick[ok] - thick[ok].mean()) ** 2).sum()
    assert report["thickness_r2"] == pytest.approx(r2, rel=1e-5, abs=1e-7)
    assert report["thickness_mae"] == pytest.approx(np.abs(resid).mean(), rel=1e-5)
    assert report["neg_elbo_nats"] == pytest.approx(report["recon_nll_nats"] + report["kl_nats"])
    plot = pd.read_csv(repo / "reports" / "plots" / "thickness.csv")
    np.testing.assert_allclose(plot.measured, thick[ok], atol=5e-5)  # rounded to 4 places
    np.testing.assert_allclose(plot.predicted, predicted[ok], atol=5e-5)


def check_experiment_results(repo: Path) -> None:
    """Each experiment's ``metrics.json`` is the summary of its per-sample ``trajectory.npz``,
    and the report's summary and success-vs-calls table are made of those same numbers."""
    summary = json.loads((repo / "reports" / "summary.json").read_text())
    curves = pd.read_csv(repo / "reports" / "plots" / "success_vs_calls.csv")
    shared = min(3 if s["start"] == "random:3" else 6 for s, _ in ALL_TINY.values())
    for name, (settings, relative) in ALL_TINY.items():
        metrics = json.loads((repo / relative / "metrics.json").read_text())
        with np.load(repo / relative / "trajectory.npz") as t:
            success, calls = t["success"], t["model_calls"]
            success_by_frame, calls_by_frame = t["success_by_frame"], t["calls_by_frame"]
            attempts, heads, oracle_calls = t["attempts"], t["predicted_success"], t["oracle_calls"]
            guide_success = t["guide_success"]
        check_metrics(metrics)
        n = 3 if settings["start"] == "random:3" else 6
        assert metrics["n"] == n and success.shape == calls.shape == heads.shape == (n,), name
        assert metrics["goals"] == settings["goals"], name
        assert metrics["method"] == settings.get("method", "latent"), name
        assert metrics["success_rate"] == pytest.approx(success.mean(), abs=1e-6), name
        assert metrics["predicted_success_rate"] == pytest.approx(heads.mean(), abs=1e-6), name
        gap = heads.mean() - success.mean()  # signed: heads minus oracles
        assert metrics["success_gap"] == pytest.approx(gap, abs=1e-6), name
        assert metrics["model_calls"] == pytest.approx(calls.mean(), abs=1e-6), name
        assert metrics["oracle_calls"] == pytest.approx(oracle_calls.mean(), abs=1e-6), name
        guided = settings.get("method", "latent") != "data_space" and settings.get("guide", True)
        if guided:
            rate = guide_success.mean()
            assert metrics["guide_success_rate"] == pytest.approx(rate, abs=1e-6), name
        else:  # no loop: no in-loop verdict, and no oracle read in it
            assert metrics["guide_success_rate"] is None and (oracle_calls == 0).all(), name
        # A retried sample's recorded path is its last attempt and its calls are all of
        # them, so the start costs one call unless some sample was steered again.
        assert metrics["retried"] == (attempts > 1).sum(), name
        assert (calls_by_frame[0] == 1) == (metrics["retried"] == 0), name
        assert (np.diff(calls_by_frame) >= 0).all(), name
        assert success_by_frame[-1] == pytest.approx(success.mean()), name
        if settings.get("method") in ("random_search", "cmaes", "bayesopt"):
            assert (calls >= 1).all() and (calls <= settings["model_budget"]).all(), name
            assert metrics["model_calls"] > 1, name
        assert summary[name]["oracle_success"] == metrics["success_rate"], name
        assert summary[name]["starts"] == n, name
        if settings.get("task", name) == "up":  # the up group starts from one list of draws
            rate = summary[name]["success_on_shared_starts"]
            assert rate == pytest.approx(success[:shared].mean()), name
        rows = curves[curves.experiment == name]
        np.testing.assert_allclose(rows.model_calls, calls_by_frame, err_msg=name)
        np.testing.assert_allclose(rows.success, success_by_frame, err_msg=name)
    assert set(curves.experiment) == set(ALL_TINY)


def check_molecule_model(repo: Path) -> None:
    """The molecule model folder and its evaluation, recomputed from the per-sample files."""
    from rdkit import Chem

    model = load_model(repo / "models/molecules/vae")
    assert model.domain.name == "molecules" and model.head_names == ["qed", "logp", "sa", "plogp"]
    smiles = model.domain.to_smiles(model.decode(model.sample_prior(3)))
    assert all(Chem.MolFromSmiles(s) is not None for s in smiles if s)
    report = json.loads((repo / "reports/molecules/evaluate.json").read_text())
    for key in ("qed_r2", "logp_mae", "prior_int_div", "prior_filters", "prior_fcd",
                "training_fcd"):  # fmt: skip
        assert key in report, key
    assert report["prior_samples"] == 20 and report["test_molecules"] <= 30
    assert 0 <= report["reconstruction"] <= 1 and 0 < report["prior_valid"] <= 1
    # Reconstruction: the share of test molecules decoded back exactly, row by row.
    recon = pd.read_csv(repo / "reports/molecules/reconstructions.csv")
    assert report["test_molecules"] == len(recon)  # fewer than 200: every one is listed
    assert (recon.exact == (recon.test == recon.reconstructed)).all()
    assert report["reconstruction"] == pytest.approx(recon.exact.mean())
    samples = (repo / "reports/molecules/prior_samples.smi").read_text().splitlines()
    assert len(samples) == 20
    # The prior samples' MOSES shares, recomputed from the file: valid (one fragment that
    # RDKit reads), unique among the valid, novel (not a training molecule) among the unique.
    mols = [Chem.MolFromSmiles(s) if s else None for s in samples]
    valid = [Chem.MolToSmiles(m) for m in mols if m is not None and len(Chem.GetMolFrags(m)) == 1]
    distinct = set(valid)
    train = pd.read_parquet(repo / "data/molecules/labels/train.parquet")
    novel = distinct - set(train.canonical.dropna())
    assert report["prior_valid"] == pytest.approx(len(valid) / 20)
    assert report["prior_unique"] == pytest.approx(len(distinct) / max(len(valid), 1))
    assert report["prior_novel"] == pytest.approx(len(novel) / max(len(distinct), 1))
    figures = sorted(p.name for p in (repo / "reports/molecules/figures").iterdir())
    assert figures == ["prior_samples.png", "reconstructions.png"]


def check_molecule_steering(repo: Path) -> None:
    """Each molecule experiment's rows: the ascent per threshold, the baselines on the first
    starts beside the ascent on those same starts, and the budget kept."""
    rows = json.loads((repo / "reports/molecules/steer/low.json").read_text())
    assert sorted(rows) == sorted(["latent_d0", "latent_d0.4", "latent_d0.4_first2",
                                   "random_search_d0.4_first2", "ga_d0.4_first2",
                                   "dataset_d0.4_first2"])  # fmt: skip
    for label, m in rows.items():
        folder = repo / "reports/molecules/steer/low" / label
        table = pd.read_csv(folder / "molecules.csv")
        assert json.loads((folder / "metrics.json").read_text()) == m, label
        check_molecule_metrics(m, table, label)
        assert m["n"] == len(table) == (2 if "first" in label else 4), label
        assert m["success_rate"] == pytest.approx(table.success.mean()), label
        assert (table.oracle_calls <= 5).all(), label
        ok = table.success
        assert (table.similarity[ok] >= m["similarity_threshold"]).all(), label
        assert (table.plogp[ok] > table.start_plogp[ok]).all(), label
    # The ascent's row on the baselines' starts is its full run's rows for them.
    steer = repo / "reports/molecules/steer/low"
    full = pd.read_csv(steer / "latent_d0.4/molecules.csv")
    first = pd.read_csv(steer / "latent_d0.4_first2/molecules.csv")
    assert first.equals(full.head(2)) and rows["latent_d0.4_first2"]["sliced_from"] == 4
    table = (repo / "reports/molecules/steering.md").read_text()
    assert table.count("| low |") == len(rows) and "| naive |" in table
    assert "(ZINC250k, published)" in table
    naive = json.loads((repo / "reports/molecules/steer/naive.json").read_text())
    assert list(naive) == ["latent_d0"]
    table = pd.read_csv(repo / "reports/molecules/steer/naive/latent_d0/molecules.csv")
    check_molecule_metrics(naive["latent_d0"], table, "naive")
    # unguarded: the heads' claimed pLogP beside RDKit's, each the mean of its column
    assert naive["latent_d0"]["predicted_plogp"] == pytest.approx(table.predicted_plogp.mean())
    assert naive["latent_d0"]["measured_plogp"] == pytest.approx(table.plogp.mean())
    assert naive["latent_d0"]["in_loop_oracles"] == "none"  # guide: false, the counter-example
    assert rows["latent_d0"]["in_loop_oracles"].startswith("RDKit")


def check_molecule_metrics(m: dict, table: pd.DataFrame, label: str) -> None:
    """A molecule run's summary is its ``molecules.csv`` rows': RDKit's success over every
    row, the heads' over the rows they read (``heads_success`` empty elsewhere), the gap
    over those same rows, the mean calls; and it holds the common keys."""
    check_metrics(m)
    readable = table.heads_success.notna()
    heads = table.heads_success[readable].astype(bool)
    success = table.success.astype(bool)
    if readable.any():
        assert m["predicted_success_rate"] == pytest.approx(heads.mean()), label
        gap = heads.mean() - success[readable].mean()
        assert m["success_gap"] == pytest.approx(gap), label
    else:  # the heads read no result: nothing to compare
        assert m["predicted_success_rate"] is None and m["success_gap"] is None, label
    assert m["oracle_calls"] == pytest.approx(table.oracle_calls.mean()), label
    assert m["model_calls"] == pytest.approx(table.model_calls.mean()), label
    assert m["oracle_calls_max"] == table.oracle_calls.max(), label


def check_molecule_labels(repo: Path) -> None:
    """The molecule tables: sizes from the tiny params, MOSES rows kept, RDKit's values."""
    from rdkit import Chem
    from rdkit.Chem import QED, Crippen

    sizes = {"train": 60, "val": 20, "test": 30}
    raw = {s: pd.read_parquet(repo / "data/molecules/raw" / f"{s}.parquet") for s in sizes}
    assert not set(raw["train"].source) & set(raw["val"].source)  # disjoint draws
    test_rows = raw["test"].source.tolist()  # a seeded draw from MOSES test, in file order
    assert len(set(test_rows)) == 30 and test_rows == sorted(test_rows) and test_rows[-1] > 30
    for split, n in sizes.items():
        table = pd.read_parquet(repo / "data/molecules/labels" / f"{split}.parquet")
        assert len(table) == n and table.valid.all(), split
        assert table.source.tolist() == raw[split].source.tolist(), split
        for row in table.head(3).itertuples():
            mol = Chem.MolFromSmiles(row.canonical)
            assert row.canonical == raw[split].canonical[row.Index]
            assert row.qed == pytest.approx(QED.qed(mol), abs=1e-12)
            assert row.logp == pytest.approx(Crippen.MolLogP(mol), abs=1e-12)


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    """A copy of the project's tracked files with tiny params, as its own git repo."""
    return copy_repo(tmp_path_factory.mktemp("pipeline") / "repo")


def check_properties(repo: Path) -> None:
    """The fitted properties' models, their experiments' metrics and the results page."""
    for folder, name in (("models/properties", "learned_area"),
                         ("models/molecules/properties", "pic50")):  # fmt: skip
        card = json.loads((repo / folder / name / "metrics.json").read_text())["properties"]
        assert card[name]["rows"] >= 30 and card[name]["oracle_certifier_mae"] > 0, name
        assert name in load_model(repo / folder / name).head_names
    assert card["pic50"]["adapted"]["adapted"]  # the tiny vocabulary lacks the series' tokens
    digits = json.loads((repo / "reports/properties/larger/metrics.json").read_text())
    assert digits["latent"]["n"] == 4 and "learned_area_verdicts_agree" in digits["latent"]
    mols = json.loads((repo / "reports/molecules/properties/pic50_up/metrics.json").read_text())
    assert sorted(mols) == ["dataset", "ga", "latent", "table"]
    for method, m in mols.items():
        check_metrics(m)
        assert m["n"] == 3 and m["oracle_calls_max"] <= 4, method
        assert "learned pic50 certifier" in m["certified_by"], method
    page = (repo / "docs/results/properties.md").read_text()
    assert "| pic50_up | pic50>=+1 | latent | 3 |" in page
    assert "| larger | learned_area>=+5, digit=keep | latent | 4 |" in page


def test_repro_builds_labels_then_does_nothing(tiny_repo):
    first = dvc("repro", cwd=tiny_repo)
    for stage in ("download", "labels", "train_judge", "train_certifier", "train", "evaluate",
                  "calibrate", "context", *OPTIMIZE, "report", *MOLECULES):  # fmt: skip
        assert f"Running stage '{stage}'" in first.stdout, stage
    for stage in ("property_tables", *PROPERTY_STAGES, "molecules_property_tables",
                  *MOLECULE_PROPERTY_STAGES, "property_report"):  # fmt: skip
        assert f"Running stage '{stage}'" in first.stdout, stage
    check_molecule_labels(tiny_repo)
    check_molecule_model(tiny_repo)
    check_molecule_steering(tiny_repo)
    check_properties(tiny_repo)
    # Every steering run of both domains writes the common metrics keys.
    written = sorted(tiny_repo.glob("results/**/metrics.json"))
    written += sorted(tiny_repo.glob("reports/molecules/steer/**/metrics.json"))
    assert len(written) == len(ALL_TINY) + 7  # low: 6 rows, naive: 1
    for path in written:
        try:
            check_metrics(json.loads(path.read_text()))
        except ValueError as err:
            raise AssertionError(f"{path.relative_to(tiny_repo)}: {err}") from None
    for split in ("train", "val", "test"):
        table = pd.read_parquet(tiny_repo / "data" / "labels" / f"{split}.parquet")
        assert list(table.columns) == ["index", "digit", *MEASURES]
        assert len(table) == 150 and table["index"].tolist() == list(range(150))
        assert table.thickness.between(0.5, 10).all()
        with np.load(tiny_repo / "data" / "raw" / f"{split}.npz") as raw:
            assert np.array_equal(table.digit, raw["labels"])  # row i is digit i's label
    assert (tiny_repo / "dvc.lock").is_file()
    model = load_model(tiny_repo / "models" / "vae")
    assert model.decode(model.sample_prior(3)).shape == (3, 28, 28)
    judges = {name: load_judge(tiny_repo / "models" / name) for name in ("judge", "certifier")}
    assert (judges["judge"].arch, judges["certifier"].arch) == ("lenet", "allconv")
    report = json.loads((tiny_repo / "reports" / "evaluate.json").read_text())
    for key in ("digit_accuracy", "thickness_r2", "neg_elbo_nats", "recon_thickness_pearson_r",
                "judge_accuracy_on_reconstructions"):  # fmt: skip
        assert key in report, key
    check_evaluate_report(tiny_repo)
    figures = sorted(p.name for p in (tiny_repo / "reports" / "figures").iterdir())
    assert figures == ["confusion.png", "latent_traversal.png", "reconstructions.png",
                       "thickness_pred_vs_measured.png"]  # fmt: skip
    shown = dvc("metrics", "show", cwd=tiny_repo).stdout
    assert "reports/evaluate.json" in shown and "digit_accuracy" in shown

    for _, relative in ALL_TINY.values():
        folder = tiny_repo / relative
        assert sorted(p.name for p in folder.iterdir()) == [
            "curves.png", "grid.png", "metrics.json", "trajectory.npz"
        ]  # fmt: skip
    check_experiment_results(tiny_repo)
    shown = dvc("metrics", "show", cwd=tiny_repo).stdout
    assert "results/up/metrics.json" in shown and "success_rate" in shown

    summary = json.loads((tiny_repo / "reports" / "summary.json").read_text())
    assert set(summary) == set(ALL_TINY)
    assert (
        summary["up_random"]["task"] == "up" and summary["up_random"]["method"] == "random_search"
    )
    # up_bayesopt ran from the first 3 of the same 6 prior draws: the group is compared on
    # those (checked in check_experiment_results); pixels, alone in its task, is not.
    assert summary["pixels"]["success_on_shared_starts"] is None
    md = (tiny_repo / "reports" / "optimize.md").read_text()
    assert "| up | [up](http://127.0.0.1:5000/#/experiments/" in md and "## Findings" in md
    assert "`pixels` (ascent on pixels): the heads report" in md
    assert "`up`: latent gradient ascent (up)" in md
    shown = dvc("metrics", "show", cwd=tiny_repo).stdout
    assert "reports/summary.json" in shown and "oracle_success" in shown
    dvc("plots", "show", "-o", "plots_html", cwd=tiny_repo)
    page = (tiny_repo / "plots_html" / "index.html").read_text()
    for plot in ("success_vs_calls.png", "examples.png", "success_vs_calls.csv"):
        assert plot in page, plot

    second = dvc("repro", cwd=tiny_repo)
    assert "Running stage" not in second.stdout
    assert "up to date" in dvc("status", cwd=tiny_repo).stdout


def test_forced_retrain_is_byte_identical(tiny_repo):
    dvc("repro", cwd=tiny_repo)
    folder = tiny_repo / "models" / "vae"
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    dvc("repro", "-f", "-s", "train", cwd=tiny_repo)
    after = {f.name: f.read_bytes() for f in folder.iterdir()}
    assert before == after  # same params, same bytes (weights, config and metrics)


def test_runs_are_tracked_in_mlflow(tiny_repo):
    from mlflow.tracking import MlflowClient

    dvc("repro", cwd=tiny_repo)
    client = MlflowClient(tracking_uri=f"sqlite:///{tiny_repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("latentsteer-mnist")
    runs = client.search_runs([exp.experiment_id])
    stages = {r.data.tags["stage"] for r in runs}
    stages_expected = {"train_judge", "train_certifier", "train", "evaluate", "calibrate",
                       "optimize", "report"}  # fmt: skip
    assert stages_expected <= stages
    certifier = next(r for r in runs if r.data.tags["stage"] == "train_certifier")
    assert certifier.info.run_name == "train_certifier"
    assert certifier.data.params["certifier.arch"] == "allconv"
    # Its logged test accuracy is the saved certifier's on the test split, recomputed.
    x, digits = load_test_digits(tiny_repo)
    read = load_judge(tiny_repo / "models" / "certifier").probabilities(x).argmax(1).numpy()
    saved = json.loads((tiny_repo / "models" / "certifier" / "metrics.json").read_text())
    logged = certifier.data.metrics["test_accuracy"]
    assert logged == saved["test_accuracy"] == pytest.approx(np.mean(read == digits), abs=1e-6)
    evaluate_run = next(r for r in runs if r.data.tags["stage"] == "evaluate")
    report = json.loads((tiny_repo / "reports" / "evaluate.json").read_text())
    for key, value in report.items():
        assert evaluate_run.data.metrics[key] == pytest.approx(value), key
    up = next(r for r in runs if r.info.run_name == "optimize@up")
    assert up.data.tags["experiment"] == "up" and up.data.tags["method"] == "latent"
    assert up.data.params["experiment.start"] == "random:6"
    up_metrics = json.loads((tiny_repo / "results" / "up" / "metrics.json").read_text())
    assert up.data.metrics["success_rate"] == pytest.approx(up_metrics["success_rate"])
    assert up.data.metrics["n"] == up_metrics["n"] == 6
    shown = {a.path for a in client.list_artifacts(up.info.run_id, "results")}
    assert {"results/grid.png", "results/curves.png", "results/metrics.json"} <= shown
    summary = next(r for r in runs if r.info.run_name == "report")
    assert summary.data.tags["run.up"] == up.info.run_id
    assert summary.data.metrics["up.oracle_success"] == up.data.metrics["success_rate"]
    assert "## Findings" in summary.data.tags["mlflow.note.content"]
    shown = {a.path for a in client.list_artifacts(summary.info.run_id, "report/plots")}
    assert "report/plots/success_vs_calls.png" in shown
    train_run = next(r for r in runs if r.data.tags["stage"] == "train")
    assert train_run.data.params["train.epochs"] == "2"
    assert len(client.get_metric_history(train_run.info.run_id, "val_recon")) == 2
    assert train_run.data.tags["git_commit"] and train_run.data.tags["data_hash"]
    artifacts = [a.path for a in client.list_artifacts(train_run.info.run_id, "model")]
    assert "model/weights.pt" in artifacts
    # The molecule stages log to their own experiment.
    molecules = client.get_experiment_by_name("latentsteer-molecules")
    runs = {r.data.tags["stage"]: r for r in client.search_runs([molecules.experiment_id])}
    assert {"molecules_train", "molecules_evaluate"} <= set(runs)
    assert runs["molecules_train"].data.tags["domain"] == "molecules"
    report = json.loads((tiny_repo / "reports/molecules/evaluate.json").read_text())
    logged = runs["molecules_evaluate"].data.metrics
    assert logged["prior_valid"] == pytest.approx(report["prior_valid"])
    shown = {a.path for a in client.list_artifacts(runs["molecules_evaluate"].info.run_id)}
    assert "prior_samples.smi" in shown and "figures" in shown


def test_labels_param_change_reruns_dependents_only(tiny_repo):
    dvc("repro", cwd=tiny_repo)
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["labels"]["threshold"] = 0.45
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params))
    status = dvc("status", cwd=tiny_repo).stdout
    assert "labels:" in status
    for stage in ("download", "train_judge", "train_certifier"):
        assert f"{stage}:" not in status, stage
    again = dvc("repro", cwd=tiny_repo)
    for stage in ("labels", "train", "evaluate", "calibrate", *OPTIMIZE, "report",
                  "property_tables", *PROPERTY_STAGES, "property_report"):  # fmt: skip
        assert f"Running stage '{stage}'" in again.stdout, stage
    for stage in ("download", "train_judge", "train_certifier", *MOLECULES,
                  "molecules_property_tables", *MOLECULE_PROPERTY_STAGES):  # fmt: skip
        assert f"Running stage '{stage}'" not in again.stdout, stage
    # workers is not a dependency: changing it re-runs nothing.
    params["labels"]["workers"] = 2
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert "up to date" in dvc("status", cwd=tiny_repo).stdout


def test_bad_param_fails_stage_with_one_line(tiny_repo, tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump({"data": {"source": "s3"}}))
    env_params = {"LATENTSTEER_PARAMS": str(bad)}
    proc = subprocess.run(
        [sys.executable, "pipeline/download.py"], cwd=tiny_repo, env={**tiny_env(), **env_params},
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "download: error: params.yaml: data.source must be one of 'pypi', 'torchvision', "
        "'idx'; got 's3'"
    )
    bad.write_text(yaml.safe_dump({"labels": {"scale": "big"}}))
    proc = subprocess.run(
        [sys.executable, "pipeline/labels.py"], cwd=tiny_repo, env={**tiny_env(), **env_params},
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1 and "labels.scale must be int; got 'big'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ddp_two_process_fit_meets_single_process_contract(tiny_repo, tmp_path):
    """The stage with ``nproc: 2`` against the one-process stage it replaces, on the same
    data and params: the same model folder (config, target scaling, metrics keys, epochs),
    metrics that describe the weights it saved, and, ``batch_size`` being per process, the
    optimizer steps of one process with twice the batch. (The sampling noise and the
    augmentation are drawn per rank, so the weights differ here; that DDP reproduces the
    one-process run where they are alike is tests/test_train.py's DDP test.)"""
    from mlflow.tracking import MlflowClient

    from latentsteer.domains.mnist.labelled import load_labelled
    from latentsteer.train import evaluate_split

    dvc("repro", cwd=tiny_repo)
    folder, ckpt = tiny_repo / "models" / "vae", tiny_repo / "checkpoints" / "train" / "last.pt"

    def stage_output() -> dict:
        return {
            "config": (folder / "config.json").read_text(),
            "metrics": json.loads((folder / "metrics.json").read_text()),
            "model": load_model(folder),
            "checkpoint": torch.load(ckpt, weights_only=True),
        }

    one = stage_output()  # the one-process stage's, from dvc repro
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["train"]["nproc"] = 2
    two_params = tmp_path / "params.yaml"
    two_params.write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [sys.executable, "pipeline/train.py"], cwd=tiny_repo,
        env={**tiny_env(), "LATENTSTEER_PARAMS": str(two_params)}, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    two = stage_output()
    model = two["model"]
    z = model.encode(torch.rand(5, 28, 28))
    assert z.shape == (5, 4) and model.decode(z).shape == (5, 28, 28)
    assert model.predict(z)["digit"].shape == (5, 10)
    metrics = two["metrics"]
    assert metrics["epochs"] == 2 and np.isfinite(metrics["val_neg_elbo"])
    assert "train: 2 epochs" in proc.stdout  # only rank 0 reports
    assert proc.stdout.count("train: 2 epochs") == 1

    # The same folder as the one-process stage writes: config, target scaling from the same
    # training data, the same metrics and history rows (rank 0's, one per epoch).
    assert two["config"] == one["config"]
    for buffer in ("target_mean", "target_std"):
        assert torch.equal(model.state_dict()[buffer], one["model"].state_dict()[buffer])
    assert sorted(metrics) == sorted(one["metrics"])
    assert metrics["epochs"] == one["metrics"]["epochs"] == params["train"]["epochs"]
    rows = [sorted(h) for h in metrics["history"]], [sorted(h) for h in one["metrics"]["history"]]
    assert rows[0] == rows[1] and len(rows[0]) == params["train"]["epochs"]
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]

    # batch_size is per process: 2 processes of B take the steps of one process of 2B.
    heads, limit = model.config.heads, params["train"]["limit"]
    raw, labels = tiny_repo / "data" / "raw", tiny_repo / "data" / "labels"
    n = len(load_labelled(raw, labels, "train", heads, limit))
    batch, epochs = params["train"]["batch_size"], params["train"]["epochs"]
    for out, world in ((one, 1), (two, 2)):
        steps = epochs * -(-n // (batch * world))
        state = out["checkpoint"]
        assert state["sched"]["last_epoch"] == steps, world
        assert {int(s["step"]) for s in state["optim"]["state"].values()} == {steps}, world

    # Each folder's validation metrics are its saved weights', measured again here.
    val = load_labelled(raw, labels, "val", heads, limit)
    for out in (one, two):
        again = evaluate_split(out["model"], val)
        for key, value in again.items():
            got = out["metrics"][f"val_{key}"]
            assert got == pytest.approx(value, rel=1e-4, abs=1e-6), key

    # The run it logged says two processes, and the numbers it wrote.
    client = MlflowClient(tracking_uri=f"sqlite:///{tiny_repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("latentsteer-mnist")
    newest = ["attributes.start_time DESC"]
    (logged,) = client.search_runs(
        [exp.experiment_id], "tags.stage = 'train'", order_by=newest, max_results=1
    )
    assert logged.data.tags["nproc"] == "2"
    assert logged.data.metrics["val_neg_elbo"] == pytest.approx(metrics["val_neg_elbo"])


def test_labels_agree_with_library(tiny_repo):
    dvc("repro", cwd=tiny_repo)
    with np.load(tiny_repo / "data" / "raw" / "test.npz") as z:
        images = z["images"]
    table = pd.read_parquet(tiny_repo / "data" / "labels" / "test.parquet")
    labels = yaml.safe_load((tiny_repo / "params.yaml").read_text())["labels"]
    labels.pop("workers")
    direct = measure(images, workers=1, config=MorphometryConfig(**labels))
    for col in ("area", "slant", "width", "height"):  # free of skeleton tie-breaking
        np.testing.assert_allclose(table[col], direct[col], rtol=1e-12, err_msg=col)
    assert np.abs(table.thickness - direct.thickness).max() < 0.2


def test_experiment_param_change_reruns_that_experiment_only(tiny_repo):
    dvc("repro", cwd=tiny_repo)
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["experiments"]["up"]["steps"] = 5
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params))
    status = dvc("status", cwd=tiny_repo).stdout
    assert sorted(stages_named(status)) == ["optimize@up", "report"]
    again = dvc("repro", cwd=tiny_repo)
    assert sorted(stages_run(again.stdout)) == ["optimize@up", "report"]
    assert "Running stage" not in dvc("repro", cwd=tiny_repo).stdout
    # A member of a group: the group's one stage, and the report.
    ((group, members),) = TINY_GROUPS.items()
    params["groups"][group][next(iter(members))]["model_budget"] = 8
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert sorted(stages_named(dvc("status", cwd=tiny_repo).stdout)) == [f"group@{group}", "report"]
    # Its last member fails after the others ran: no partial folder, no run logged.
    folder = tiny_repo / "results" / group
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    runs_before = _optimize_runs(tiny_repo)
    last = list(members)[-1]
    params["groups"][group][last]["start"] = "test:0-999"  # the tiny split has 150 digits
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params))
    failed = dvc("repro", cwd=tiny_repo, check=False)
    assert failed.returncode != 0
    assert f"group@{group}: error: start 'test:0-999': indices must satisfy" in failed.stderr
    assert "Traceback" not in failed.stderr
    # DVC deletes a stage's outputs before it runs it; what must not be there is a partial
    # folder with only the members that finished.
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after in ({}, before)
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []
    assert _optimize_runs(tiny_repo) == runs_before
    params["groups"][group][last]["start"] = members[last]["start"]  # later tests repro
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params))


def _optimize_runs(repo: Path) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("latentsteer-mnist")
    return len(client.search_runs([exp.experiment_id], "tags.stage = 'optimize'"))


def test_train_param_change_reruns_model_stages_only(tiny_repo):
    dvc("repro", cwd=tiny_repo)
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["train"]["beta"] = 2.0
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params))
    # the digits' fitted property sits on the calibrated model: it is fitted and steered again
    expected = ["calibrate", "context", "evaluate", *OPTIMIZE, "report", "train",
                *PROPERTY_STAGES, "property_report"]  # fmt: skip
    assert sorted(stages_named(dvc("status", cwd=tiny_repo).stdout)) == ["train"]  # the root
    again = dvc("repro", cwd=tiny_repo)
    assert sorted(stages_run(again.stdout)) == sorted(expected)
    assert "Running stage" not in dvc("repro", cwd=tiny_repo).stdout


def test_molecule_param_change_reruns_molecule_stages_only(tiny_repo):
    dvc("repro", cwd=tiny_repo)
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["molecules"]["data"]["seed"] = 1
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params))
    again = dvc("repro", cwd=tiny_repo)
    # the molecule properties sit on the molecule model; their tables come from other wheels
    expected = [*MOLECULES, *MOLECULE_PROPERTY_STAGES, "property_report"]
    assert sorted(stages_run(again.stdout)) == sorted(expected)
    # Where the wheel comes from, and how many workers measure, change nothing written.
    params["molecules"]["data"]["index_url"] = "https://example.invalid/simple"
    params["molecules"]["labels"]["workers"] = 2
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert "up to date" in dvc("status", cwd=tiny_repo).stdout


@pytest.mark.slow
def test_param_sweep_with_dvc_experiments(tiny_repo):
    dvc("repro", cwd=tiny_repo)
    run(["git", "add", "-A"], tiny_repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny"], tiny_repo)
    beta = yaml.safe_load((tiny_repo / "params.yaml").read_text())["train"]["beta"] + 1
    proc = dvc("exp", "run", "-S", f"train.beta={beta}", "-n", "sweep1", cwd=tiny_repo)
    assert sorted(stages_run(proc.stdout + proc.stderr)) == sorted(
        ["calibrate", "context", "evaluate", *OPTIMIZE, "report", "train", *PROPERTY_STAGES,
         "property_report"]
    )  # fmt: skip
    shown = json.loads(dvc("exp", "show", "--json", cwd=tiny_repo).stdout)
    names = {exp["name"] for row in shown for exp in row.get("experiments") or []}
    assert "sweep1" in names, shown
    table = pd.read_csv(io.StringIO(dvc("exp", "show", "--csv", cwd=tiny_repo).stdout))
    row = table.set_index("Experiment").loc["sweep1"]
    assert float(row["train.beta"]) == beta
    # The experiment's workspace holds what it built: its table row is that summary, and
    # every result and report in it is consistent with the retrained model.
    summary = json.loads((tiny_repo / "reports" / "summary.json").read_text())
    assert float(row["up.oracle_success"]) == pytest.approx(summary["up"]["oracle_success"])
    check_evaluate_report(tiny_repo)
    check_experiment_results(tiny_repo)
