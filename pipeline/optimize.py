"""Stage `optimize@<experiment>`: one steering experiment -> results/<experiment>/.

Reads the experiment's entry under `experiments:` in params.yaml and the shared `optimize:`
section, runs it (latent ascent, or data-space ascent as the counter-example), verifies the
final samples with the oracles, writes trajectory.npz, grid.png, curves.png and
metrics.json, and logs one MLflow run named `optimize@<experiment>`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from latentsteer import tracking
from latentsteer.config import ConfigError, section
from latentsteer.experiment import Context, ExperimentConfig, run_experiment, write_results
from latentsteer.optimize_config import OptimizeConfig
from latentsteer.stage import run_stage
from latentsteer.steering_context import load_context

RESULTS = Path("results")
MODEL, JUDGE, RAW, LABELS = "models/vae_calibrated", "models/judge", "data/raw", "data/labels"


def experiment_config(params: dict[str, Any], name: str) -> ExperimentConfig:
    """params.experiments[name] → ExperimentConfig (errors name the full key)."""
    experiments = params.get("experiments") or {}
    if name not in experiments:
        known = ", ".join(sorted(experiments)) or "none"
        raise ConfigError(
            f"params.yaml: no experiment {name!r} under experiments; there are {known}"
        )
    return section(
        {f"experiments.{name}": experiments[name]}, f"experiments.{name}", ExperimentConfig
    )


def main(params: dict[str, Any]) -> None:
    if len(sys.argv) != 2:
        raise ValueError("usage: python pipeline/optimize.py EXPERIMENT")
    name = sys.argv[1]
    cfg = experiment_config(params, name)
    shared = section(params, "optimize", OptimizeConfig)
    ctx: Context = load_context(MODEL, JUDGE, RAW, LABELS, shared)
    outcome = run_experiment(cfg, ctx)
    folder = RESULTS / name
    write_results(outcome, folder)
    m = outcome.metrics
    tags = {
        "experiment": name,
        "method": cfg.method,
        "goals": " ".join(cfg.goals),
        "start": cfg.start,
    }
    with tracking.start_run(f"optimize@{name}", stage="optimize", tags=tags) as run:
        run.log_params({"experiment": cfg.as_params(), "optimize": shared.__dict__})
        run.log_metrics(m)
        run.log_artifacts(folder, "results")
    print(
        f"optimize@{name}: oracle success {m['success_rate']:.3f}, "
        f"predicted {m['predicted_success_rate']:.3f}, realism x{m['realism_ratio']:.2f}, "
        f"{m['wall_seconds']:.1f} s"
    )


if __name__ == "__main__":
    run_stage(f"optimize@{sys.argv[1] if len(sys.argv) > 1 else '?'}", main)
