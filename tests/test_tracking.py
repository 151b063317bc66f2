"""MLflow tracking through the one module that talks to it, on a real SQLite store."""

from __future__ import annotations

import pytest

from latentsteer import tracking


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_run_records_params_metrics_tags_and_artifacts(store, tmp_path):
    from mlflow.tracking import MlflowClient

    art = tmp_path / "art"
    art.mkdir()
    (art / "note.txt").write_text("hello")
    with tracking.start_run(
        "train", stage="train", tags={"data_hash": "abc"}, domain="mnist"
    ) as run:
        run.log_params({"train": {"lr": 0.002, "epochs": 3}, "model": {"heads": [1, 2]}})
        run.log_metrics({"val_recon": 10.0}, step=1)
        run.log_metrics({"val_recon": 8.0, "note": "skipped"}, step=2)
        run.log_artifacts(art, "files")
    client = MlflowClient(tracking_uri=store)
    got = client.get_run(run.run_id)
    assert got.info.run_name == "train" and got.info.status == "FINISHED"
    assert got.data.params["train.lr"] == "0.002" and got.data.params["train.epochs"] == "3"
    assert got.data.tags["stage"] == "train" and got.data.tags["data_hash"] == "abc"
    assert got.data.tags["git_commit"]
    history = client.get_metric_history(run.run_id, "val_recon")
    assert [(m.step, m.value) for m in history] == [(1, 10.0), (2, 8.0)]
    assert [a.path for a in client.list_artifacts(run.run_id, "files")] == ["files/note.txt"]


def test_failed_block_marks_run_failed(store):
    from mlflow.tracking import MlflowClient

    with pytest.raises(RuntimeError), tracking.start_run("x", stage="train", domain="mnist") as run:
        raise RuntimeError("boom")
    assert MlflowClient(tracking_uri=store).get_run(run.run_id).info.status == "FAILED"


def test_default_store_is_sqlite_in_cwd(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_flatten():
    assert tracking.flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": None}) == {
        "a.b": "1", "a.c.d": "x", "e": "None"
    }  # fmt: skip
