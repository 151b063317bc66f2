"""Finding runs in the MLflow store, and their addresses in the UI (for the report's links).

Kept apart from :mod:`latentsteer.tracking`, which every training stage depends on, so that
reading runs back can change without re-running training.
"""

from __future__ import annotations

from dataclasses import dataclass

from latentsteer.tracking import experiment_name, tracking_uri

UI_ADDRESS = "http://127.0.0.1:5000"  # where `make ui` serves the local store


@dataclass(frozen=True)
class RunRef:
    """Where a run lives: its experiment and its id."""

    experiment_id: str
    run_id: str

    @property
    def link(self) -> str:
        """Address of the run in the MLflow UI: the tracking server's, else ``make ui``'s."""
        uri = tracking_uri()
        base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else UI_ADDRESS
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"


def latest_runs(stage: str, key: str, domain: str) -> dict[str, RunRef]:
    """The newest finished run of ``stage`` for each value of tag ``key``, in ``domain``'s
    experiment.

    Returns an empty dict when the store has no such experiment yet.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri())
    experiment = client.get_experiment_by_name(experiment_name(domain))
    if experiment is None:
        return {}
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.stage = '{stage}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=5000,
    )
    latest: dict[str, RunRef] = {}
    for run in runs:
        latest.setdefault(
            run.data.tags.get(key, ""), RunRef(run.info.experiment_id, run.info.run_id)
        )
    latest.pop("", None)
    return latest
