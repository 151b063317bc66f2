"""Stage `report`: compare every experiment's oracle-verified results, task by task.

Reads results/<experiment>/{metrics.json, trajectory.npz} for each experiment in
params.yaml (results/<group>/<member>/ for the members of groups) and writes
reports/optimize.md (task x method table and findings) and its stamped copy
docs/results/mnist.md, reports/summary.json (DVC metrics) and reports/plots/ (success
against model calls, example outcomes). Logs one MLflow run,
`report`, that links to each experiment's latest run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from latentsteer import report, runs, tracking
from latentsteer.atomic import atomic_file, write_json, write_table
from latentsteer.domains.mnist.grids import save_examples
from latentsteer.plots import save_success_curves
from latentsteer.stage import run_stage
from latentsteer.stamp import stamped_page

RESULTS, REPORTS, PLOTS = Path("results"), Path("reports"), Path("reports/plots")
CONTEXT = Path("models/steering_context.npz")
# How the report names MNIST's oracles, units and samples (the engine's report names none).
WORDING = report.Wording(
    oracles="Morpho-MNIST measures of the decoded image, the certifier's digit",
    change_unit=" (px for thickness)",
    realism_reference="real digits of the same class and thickness",
)


def main(params: dict[str, Any]) -> None:
    span = tracking.Span.begin()  # the run spans the work, not just the logging
    experiments = params.get("experiments") or {}
    groups = params.get("groups") or {}
    if not experiments and not groups:
        raise ValueError("params.yaml: experiments and groups are empty; nothing to report")
    entries = report.collect(RESULTS, experiments)
    for group, members in groups.items():
        entries += report.collect(RESULTS / group, members, stage=f"group@{group}")
    frame = report.table(entries)
    claims = report.findings(entries) + report.truth_findings(entries)
    if CONTEXT.is_file():  # the certifier's features of the realism reference
        with np.load(CONTEXT, allow_pickle=False) as ctx:
            claims += report.realism_findings(entries, ctx["reference_features"])
    latest = runs.latest_runs("optimize", "experiment", domain="mnist")
    links = {name: ref.link for name, ref in latest.items()}

    PLOTS.mkdir(parents=True, exist_ok=True)
    with atomic_file(REPORTS / "optimize.md") as tmp:
        tmp.write_text(report.markdown(frame, claims, links, WORDING))
    with atomic_file("docs/results/mnist.md") as tmp:  # the same page, stamped, for the docs
        tmp.write_text(stamped_page((REPORTS / "optimize.md").read_text(), "report"))
    summary = report.summary(frame)
    write_json(summary, REPORTS / "summary.json")
    write_table(report.curve_table(entries), PLOTS / "success_vs_calls.csv")
    compared = {t: g for t, g in report.tasks(entries).items() if len(g) > 1}
    panels = {
        task: [(f"{e.method} ({e.name})", e.calls_by_frame, e.success_by_frame) for e in group]
        for task, group in compared.items()
    }
    save_success_curves(panels or {"all": []}, PLOTS / "success_vs_calls.png")
    shown = [e for g in compared.values() for e in g] + [
        e for e in entries if e.method == "data_space"
    ]
    save_examples(
        [(f"{e.task} · {e.method}: oracle success {e.metrics['success_rate']:.0%}", e.first,
          e.last) for e in shown or entries[:1]],
        PLOTS / "examples.png",
    )  # fmt: skip
    span.end()

    with tracking.start_run("report", stage="report", domain="mnist", span=span) as run:
        run.set_tags({f"run.{name}": ref.run_id for name, ref in latest.items()})
        run.set_tags({"mlflow.note.content": (REPORTS / "optimize.md").read_text()[:5000]})
        run.log_metrics(
            {f"{name}.{k}": v for name, row in summary.items()
             for k, v in row.items() if isinstance(v, int | float) and k != "starts"}
        )  # fmt: skip
        for path in (REPORTS / "optimize.md", REPORTS / "summary.json"):
            run.log_artifact(path, "report")
        run.log_artifacts(PLOTS, "report/plots")
    for claim in claims:
        print(f"report: {claim}")


if __name__ == "__main__":
    run_stage("report", main)
