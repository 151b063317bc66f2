"""The one place that talks to MLflow.

The store is ``$MLFLOW_TRACKING_URI`` when set (a shared tracking server, say), else the
embedded SQLite database ``mlflow.db`` in the working directory (the repository root when
DVC runs a stage). Runs carry tags that tell them apart in the UI: the stage, the git
commit, and the hash of the data they read.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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


@contextmanager
def start_run(
    run_name: str, stage: str, tags: Mapping[str, str] | None = None, *, domain: str
) -> Iterator[Run]:
    """Open a named run in ``domain``'s experiment, tagged with stage, domain and commit.

    A failure inside the block marks the run FAILED, so half-finished runs are visible as such.
    """
    import logging

    import mlflow

    # MLflow's database migrations log at INFO on first use; stages print their own summary.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(experiment_name(domain))
    all_tags = {"stage": stage, "domain": domain, "git_commit": git_commit(), **(tags or {})}
    with mlflow.start_run(run_name=run_name, tags=all_tags) as run:
        yield Run(mlflow, run)


def data_hash(*paths: str | os.PathLike[str]) -> str:
    """Short content hash of the files under ``paths``, to tag runs with their data."""
    h = hashlib.sha256()
    for root in paths:
        for f in sorted(Path(root).rglob("*")):
            if f.is_file():
                h.update(f.name.encode())
                h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:12]
