"""The one place that talks to MLflow.

The store is ``$MLFLOW_TRACKING_URI`` when set (a shared tracking server, say), else the
embedded SQLite database ``mlflow.db`` in the working directory (the repository root when
DVC runs a stage). Runs carry tags that tell them apart in the UI: the stage, the git
commit, and the hash of the data they read.

Every experiment latentsteer opens is tagged ``mlflow.experimentKind:
custom_model_development``: MLflow 3 then knows it for model training ("Machine learning"),
not a GenAI app. (MLflow 3.17's UI still opens an experiment in the view its sidebar switch
is set to; ``#/experiments/<id>?workflowType=machine_learning`` opens the runs table.)

A run may carry the times of work done before it was opened (a :class:`Span`): its start
and end, and so the UI's Duration, are then the work's own.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The experiment tag by which MLflow 3 tells model training from GenAI apps.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def experiment_name(domain: str) -> str:
    """The MLflow experiment of one domain's runs (``latentsteer-mnist``): one domain's runs
    compare side by side, and another domain's metrics do not crowd its columns."""
    return f"latentsteer-{domain}"


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def git_commit() -> str:
    """The current commit (with ``-dirty`` if the tree has changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params → ``{"train.lr": "0.002", ...}`` (MLflow params are flat strings)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = str(value)[:6000]
    return out


class Run:
    """A thin handle on an active MLflow run."""

    def __init__(self, mlflow_module: Any, run: Any) -> None:
        self._mlflow = mlflow_module
        self.run_id: str = run.info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._mlflow.log_params(flatten(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        self._mlflow.log_metrics(clean, step=step)

    def log_artifacts(self, folder: str | os.PathLike[str], path: str | None = None) -> None:
        self._mlflow.log_artifacts(str(folder), artifact_path=path)

    def log_artifact(self, file: str | os.PathLike[str], path: str | None = None) -> None:
        self._mlflow.log_artifact(str(file), artifact_path=path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._mlflow.set_tags(dict(tags))


@dataclass
class Span:
    """When a piece of work ran, in seconds since the epoch (``time.time()``).

    Attributes:
        started: when the work began.
        ended: when it ended; ``None`` while it runs (a run logging it then ends when closed).
    """

    started: float
    ended: float | None = None

    @classmethod
    def begin(cls) -> Span:
        """A span that starts now."""
        return cls(time.time())

    def end(self) -> None:
        """Mark the work ended now."""
        self.ended = time.time()


@contextmanager
def timed() -> Iterator[Span]:
    """Time the block: the :class:`Span` yielded gets its end when the block exits, even by an
    exception, so that a run logged afterwards can carry the work's own times."""
    span = Span.begin()
    try:
        yield span
    finally:
        span.end()


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def open_experiment(client: Any, name: str) -> str:
    """The id of the experiment ``name``, created if need be, tagged with
    :data:`EXPERIMENT_KIND` (added to an existing experiment that lacks the tag; a kind
    someone chose is left alone)."""
    from mlflow.exceptions import MlflowException

    key, value = EXPERIMENT_KIND
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, tags={key: value})
        except MlflowException:  # another process created it meanwhile
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if key not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


@contextmanager
def start_run(
    run_name: str,
    stage: str,
    tags: Mapping[str, str] | None = None,
    *,
    domain: str,
    span: Span | None = None,
) -> Iterator[Run]:
    """Open a named run in ``domain``'s experiment, tagged with stage, domain and commit.

    A failure inside the block marks the run FAILED, so half-finished runs are visible as such.

    Args:
        span: the work the run records, when it was done before the run opens: the run starts
            at ``span.started`` and ends at ``span.ended`` (when the block exits if ``None``),
            instead of spanning only the logging.
    """
    import logging

    import mlflow
    from mlflow.tracking.context import registry
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    # MLflow's database migrations log at INFO on first use; stages print their own summary.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    experiment_id = open_experiment(client, experiment_name(domain))
    mlflow.set_experiment(experiment_id=experiment_id)
    all_tags = {"stage": stage, "domain": domain, "git_commit": git_commit(), **(tags or {})}
    if span is None:
        with mlflow.start_run(run_name=run_name, tags=all_tags) as run:
            yield Run(mlflow, run)
        return
    # The fluent API opens runs "now"; the client takes a start time. The tags are resolved
    # as mlflow.start_run resolves them (user, source, ...), so both kinds of run look alike.
    created = client.create_run(
        experiment_id,
        start_time=_ms(span.started),
        tags=registry.resolve_tags({MLFLOW_RUN_NAME: run_name, **all_tags}),
        run_name=run_name,
    )
    with mlflow.start_run(run_id=created.info.run_id) as run:
        yield Run(mlflow, run)
    if span.ended is not None:  # closing the run stamped "now"; the work ended earlier
        client.set_terminated(created.info.run_id, "FINISHED", end_time=_ms(span.ended))


def data_hash(*paths: str | os.PathLike[str]) -> str:
    """Short content hash of the files under ``paths`` (folders or files), to tag runs
    with their data."""
    h = hashlib.sha256()
    for root in paths:
        files = [Path(root)] if Path(root).is_file() else sorted(Path(root).rglob("*"))
        for f in files:
            if f.is_file():
                h.update(f.name.encode())
                h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:12]
