"""The project's tracking code against a real `mlflow server`, the team set-up of the README.

`MLFLOW_TRACKING_URI=http://127.0.0.1:<port>` points `latentsteer.tracking` at a server on
loopback whose artefacts go to its own `--artifacts-destination` folder (proxied uploads):
runs, tags, metrics and files must land on the server, nothing in the working directory.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_proc import mlflow_server
from tiny_pipeline import copy_repo, dvc

from latentsteer import tracking

LOCAL_STORES = ("mlflow.db", "mlruns", "mlartifacts")


class Server:
    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.artifacts = root / "artifacts"

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.url)

    def stored(self, run) -> Path:
        """Where the server keeps a run's artefacts: ``mlflow-artifacts:/<exp>/<run>/...``."""
        uri = run.info.artifact_uri
        assert uri.startswith("mlflow-artifacts:/"), f"artefacts not proxied: {uri}"
        return self.artifacts / uri.removeprefix("mlflow-artifacts:/")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("server")
    with mlflow_server(
        "server",
        "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        cwd=root, log=root / "server.log",
    ) as url:  # fmt: skip
        yield Server(url, root)


@pytest.fixture
def remote(server, monkeypatch) -> Server:
    """Point the project (and anything it starts) at the server, with bounded HTTP retries."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    yield server
    import mlflow

    mlflow.set_tracking_uri(None)  # no later test in this process keeps talking to it


def _git_repo_with_commit(path: Path) -> str:
    path.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "start"]):
        subprocess.run([*git, *args], cwd=path, check=True, timeout=30)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_start_run_logs_to_the_server(remote, tmp_path, monkeypatch):
    work = tmp_path / "work"
    sha = _git_repo_with_commit(work)
    monkeypatch.chdir(work)
    (work / "out").mkdir()
    (work / "out" / "grid.txt").write_text("grid\n")
    (work / "note.txt").write_text("hello server\n")

    assert tracking.tracking_uri() == remote.url
    with tracking.start_run(
        "probe", stage="train", tags={"data_hash": "abc"}, domain="mnist"
    ) as run:
        run.log_params({"train": {"lr": 0.002}})
        run.log_metrics({"loss": 3.0}, step=0)
        run.log_metrics({"loss": 2.5, "skipped": "text"}, step=1)
        run.log_artifact(work / "note.txt")
        run.log_artifacts(work / "out", "results")

    client = remote.client()
    got = client.get_run(run.run_id)
    assert got.info.run_name == "probe" and got.info.status == "FINISHED"
    assert client.get_experiment(got.info.experiment_id).name == tracking.experiment_name("mnist")
    assert got.data.tags["stage"] == "train" and got.data.tags["data_hash"] == "abc"
    assert got.data.tags["git_commit"] == sha
    assert got.data.params == {"train.lr": "0.002"}
    history = client.get_metric_history(run.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 3.0), (1, 2.5)]
    assert "skipped" not in got.data.metrics

    listed = {a.path for a in client.list_artifacts(run.run_id)}
    assert listed == {"note.txt", "results"}
    stored = remote.stored(got)
    assert (stored / "note.txt").read_text() == "hello server\n"
    assert (stored / "results" / "grid.txt").read_text() == "grid\n"
    # Read back through the server's proxy too, as a teammate on another machine would.
    fetched = Path(client.download_artifacts(run.run_id, "note.txt", str(tmp_path)))
    assert fetched.read_text() == "hello server\n"
    for name in LOCAL_STORES:
        assert not (work / name).exists(), f"{name} written in the working directory"


@pytest.mark.slow
def test_pipeline_stage_logs_to_the_server(remote, tmp_path):
    """`MLFLOW_TRACKING_URI=… dvc repro train_judge` in a tiny repo copy: its run is remote."""
    repo = copy_repo(tmp_path / "repo")
    before = _run_ids(remote)

    out = dvc("repro", "train_judge", cwd=repo).stdout
    assert "Running stage 'train_judge'" in out

    client = remote.client()
    new = [client.get_run(run_id) for run_id in _run_ids(remote) - before]
    assert [r.info.run_name for r in new] == ["train_judge"]
    got = new[0]
    assert got.info.status == "FINISHED"
    assert got.data.tags["stage"] == "train_judge" and got.data.tags["git_commit"]
    assert 0 <= got.data.metrics["test_accuracy"] <= 1
    assert got.data.params["judge.epochs"] == "1"  # the tiny params reached the server
    logged = sorted(p.relative_to(repo / "models" / "judge").as_posix()
                    for p in (repo / "models" / "judge").rglob("*") if p.is_file())  # fmt: skip
    assert logged, "the stage wrote no model"
    stored = remote.stored(got) / "judge"
    for rel in logged:
        assert (stored / rel).read_bytes() == (repo / "models" / "judge" / rel).read_bytes()
    for name in LOCAL_STORES:
        assert not (repo / name).exists(), f"{name} written in the repo"


def _run_ids(server: Server) -> set[str]:
    client = server.client()
    experiment = client.get_experiment_by_name(tracking.experiment_name("mnist"))
    if experiment is None:
        return set()
    return {r.info.run_id for r in client.search_runs([experiment.experiment_id])}
