"""Finding runs in the MLflow store, and their addresses in the UI (for the report's links).

Kept apart from :mod:`latentsteer.tracking`, which every training stage depends on, so that
reading runs back can change without re-running training.
"""

from __future__ import annotations

from latentsteer.tracking import EXPERIMENT, tracking_uri

UI_ADDRESS = "http://127.0.0.1:5000"  # where `make ui` serves the local store


def latest_runs(stage: str, key: str) -> dict[str, str]:
    """The newest finished run of ``stage`` for each value of tag ``key`` → its run id.

    Returns an empty dict when the store has no such experiment yet.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri())
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return {}
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.stage = '{stage}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=5000,
    )
    latest: dict[str, str] = {}
    for run in runs:
        latest.setdefault(run.data.tags.get(key, ""), run.info.run_id)
    latest.pop("", None)
    return latest


def run_link(run_id: str) -> str:
    """Address of a run in the MLflow UI: the tracking server's, else ``make ui``'s."""
    from mlflow.tracking import MlflowClient

    uri = tracking_uri()
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else UI_ADDRESS
    experiment_id = MlflowClient(tracking_uri=uri).get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
