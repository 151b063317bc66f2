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


def _kind(client, domain="mnist"):
    experiment = client.get_experiment_by_name(tracking.experiment_name(domain))
    return experiment.tags.get(tracking.EXPERIMENT_KIND[0])


def test_experiments_are_tagged_as_model_development(store):
    """MLflow 3 tells model training from GenAI apps by the experiment's kind: the tag is set
    at creation and added to an experiment that lacks it."""
    import mlflow
    from mlflow.tracking import MlflowClient

    assert tracking.EXPERIMENT_KIND == ("mlflow.experimentKind", "custom_model_development")
    client = MlflowClient(tracking_uri=store)
    with tracking.start_run("train", stage="train", domain="mnist"):
        pass
    assert _kind(client) == "custom_model_development"
    client.create_experiment(tracking.experiment_name("molecules"))  # made before the tag
    assert _kind(client, "molecules") is None
    with tracking.start_run("x", stage="train", domain="molecules"):
        pass
    assert _kind(client, "molecules") == "custom_model_development"
    # A kind someone chose in the UI is theirs to keep.
    molecules = client.get_experiment_by_name(tracking.experiment_name("molecules"))
    client.set_experiment_tag(molecules.experiment_id, "mlflow.experimentKind", "genai_development")
    with tracking.start_run("y", stage="train", domain="molecules") as run:
        pass
    assert _kind(client, "molecules") == "genai_development"
    assert client.get_run(run.run_id).info.experiment_id == molecules.experiment_id
    assert mlflow.active_run() is None


def test_a_run_logged_after_its_work_spans_the_work(store):
    """Duration in the UI is the work's: a run opened after a 1 s job starts when it began
    and ends when it ended, not when the logging did."""
    import time

    from mlflow.tracking import MlflowClient

    def job() -> int:
        time.sleep(1.0)
        return 3

    with tracking.timed() as span:
        result = job()
    time.sleep(0.3)  # the logging comes later, and takes time of its own
    with tracking.start_run("optimize@x", stage="optimize", domain="mnist", span=span) as run:
        run.log_metrics({"result": result})
        time.sleep(0.3)
    got = MlflowClient(tracking_uri=store).get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "optimize@x"
    assert got.info.end_time - got.info.start_time >= 1000
    assert got.info.start_time == round(span.started * 1000)
    assert got.info.end_time == round(span.ended * 1000)
    assert got.data.metrics["result"] == 3.0
    # The run looks like any other: the tags mlflow.start_run resolves are there too.
    assert got.data.tags["stage"] == "optimize" and got.data.tags["git_commit"]
    assert got.data.tags["mlflow.runName"] == "optimize@x" and "mlflow.user" in got.data.tags


def test_a_span_still_open_ends_with_the_run_and_a_failure_is_marked(store):
    import time

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    span = tracking.Span.begin()
    time.sleep(1.0)
    with tracking.start_run("report", stage="report", domain="mnist", span=span) as run:
        pass
    got = client.get_run(run.run_id).info
    assert got.start_time == round(span.started * 1000) and got.end_time - got.start_time >= 1000
    span.end()
    with (
        pytest.raises(RuntimeError),
        tracking.start_run("x", stage="optimize", domain="mnist", span=span) as failed,
    ):
        raise RuntimeError("boom")
    assert client.get_run(failed.run_id).info.status == "FAILED"
