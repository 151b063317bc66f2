"""Stages `optimize@<experiment>` and `group@<group>`: steering experiments -> results/.

`python pipeline/optimize.py EXPERIMENT` runs the entry `experiments.EXPERIMENT` of
params.yaml into results/EXPERIMENT/. `python pipeline/optimize.py --group GROUP` runs every
member of `groups.GROUP` in this one process into results/GROUP/<member>/: short experiments
then pay Python, torch, the models and MLflow once instead of once each.

Each experiment is run (latent ascent, a gradient-free baseline, or data-space ascent as the
counter-example), its final samples verified by the oracles, and trajectory.npz, grid.png,
curves.png and metrics.json written; each is one MLflow run named `optimize@<experiment>`,
whose start and end are those of the experiment's own work (runs are logged once its results
are in place).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentsteer.config import ConfigError, section
from latentsteer.stage import run_stage

if TYPE_CHECKING:
    from latentsteer.experiment import Context, ExperimentConfig
    from latentsteer.optimize_config import OptimizeConfig
    from latentsteer.tracking import Span

# torch and the rest are imported inside the functions, so that reading this file (usage
# errors, tests of its helpers) stays cheap.

RESULTS = Path("results")
MODEL, JUDGE, RAW, LABELS = "models/vae_calibrated", "models/judge", "data/raw", "data/labels"
# The judge steers and stops samples in the closed loop; the certifier, which the loop
# never sees, grades them (src/latentsteer/guide.py).
CERTIFIER = "models/certifier"
CONTEXT = "models/steering_context.npz"  # from the `context` stage
USAGE = "usage: python pipeline/optimize.py EXPERIMENT | --group GROUP"


def experiment_config(entry: object, key: str) -> ExperimentConfig:
    """One params.yaml entry at ``key`` (``experiments.NAME``) → ExperimentConfig, checked
    against what MNIST models take (their methods and settings) as well as its own types.

    Raises:
        ValueError: a bad entry (one line naming ``key``).
    """
    from latentsteer.experiment import ExperimentConfig
    from latentsteer.experiment_config import configure
    from latentsteer.registry import get_domain

    cfg = section({key: entry}, key, ExperimentConfig)
    try:
        configure(get_domain("mnist"), {k: getattr(cfg, k) for k in entry})  # type: ignore[union-attr]
    except ValueError as err:
        raise ValueError(f"{key}: {err}") from None
    return cfg


def members(params: dict[str, Any], argv: list[str]) -> tuple[str, dict[str, Any], Path]:
    """The params section this run reads, its entries to run and their results folder.

    Returns:
        ``(key prefix, {name: entry}, folder)``: ``("experiments", {NAME: ...}, results)`` for
        one experiment, ``("groups.GROUP", {member: ...}, results/GROUP)`` for a group.
    """
    if len(argv) == 1 and not argv[0].startswith("-"):
        name = argv[0]
        return "experiments", {name: _entry(params, "experiments", "experiment", name)}, RESULTS
    if len(argv) == 2 and argv[0] == "--group":
        name = argv[1]
        entries = _entry(params, "groups", "group", name)
        if not isinstance(entries, dict) or not entries:
            raise ConfigError(
                f"params.yaml: groups.{name} must map member names to experiment entries"
            )
        return f"groups.{name}", entries, RESULTS / name
    raise ValueError(USAGE)


def _entry(params: dict[str, Any], section_name: str, kind: str, name: str) -> Any:
    """``params[section_name][name]``, or a ConfigError listing the names there are."""
    known = params.get(section_name) or {}
    if name not in known:
        there = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"params.yaml: no {kind} {name!r} under {section_name}; there are {there}"
        )
    return known[name]


def run_one(name: str, cfg: ExperimentConfig, ctx: Context, folder: Path) -> dict[str, Any]:
    """Run and verify one experiment, write its files into ``folder``; return its metrics."""
    from latentsteer.experiment import run_experiment, summary_line, write_results

    outcome = run_experiment(cfg, ctx)
    write_results(outcome, folder)
    m = outcome.metrics
    print(f"optimize@{name}: {summary_line(m)}")
    return m


def log_run(
    name: str, cfg: ExperimentConfig, shared: OptimizeConfig, folder: Path,
    metrics: dict[str, Any], group: str | None = None, span: Span | None = None,
) -> None:  # fmt: skip
    """One MLflow run ``optimize@<name>``: tags, params, metrics and ``folder``'s files; it
    starts and ends when the experiment's work did (``span``)."""
    from latentsteer import tracking

    tags = {
        "experiment": name,
        "method": cfg.method,
        "goals": " ".join(cfg.goals),
        "start": cfg.start,
        **({"group": group} if group else {}),
    }
    with tracking.start_run(
        f"optimize@{name}", stage="optimize", tags=tags, domain="mnist", span=span
    ) as run:
        run.log_params({"experiment": cfg.as_params(), "optimize": shared.__dict__})
        run.log_metrics(metrics)
        run.log_artifacts(folder, "results")


def main(params: dict[str, Any]) -> None:
    from latentsteer.atomic import atomic_dir
    from latentsteer.domains.mnist.steering_context import load_context
    from latentsteer.optimize_config import OptimizeConfig
    from latentsteer.tracking import timed

    prefix, entries, folder = members(params, sys.argv[1:])
    # Every entry is checked before any runs: a typo in the last member fails at once.
    configs = {name: experiment_config(e, f"{prefix}.{name}") for name, e in entries.items()}
    shared = section(params, "optimize", OptimizeConfig)
    ctx = load_context(MODEL, JUDGE, RAW, LABELS, shared, cached=CONTEXT, certifier_dir=CERTIFIER)
    if prefix == "experiments":
        ((name, cfg),) = configs.items()
        with timed() as span:
            metrics = run_one(name, cfg, ctx, folder / name)
        log_run(name, cfg, shared, folder / name, metrics, span=span)
        return
    group = prefix.removeprefix("groups.")
    # A group that fails part-way writes no partial folder (run by hand, the previous one
    # stays whole) and logs no run: runs are logged once the new folder is in place.
    done: dict[str, tuple[dict[str, Any], Span]] = {}
    with atomic_dir(folder) as tmp:
        for name, cfg in configs.items():
            with timed() as span:
                done[name] = run_one(name, cfg, ctx, tmp / name), span
    for name, (metrics, span) in done.items():
        log_run(name, configs[name], shared, folder / name, metrics, group=group, span=span)


def stage_name(argv: list[str]) -> str:
    """``optimize@NAME`` or ``group@NAME``, for error messages."""
    if len(argv) == 2 and argv[0] == "--group":
        return f"group@{argv[1]}"
    return f"optimize@{argv[0] if argv else '?'}"


if __name__ == "__main__":
    run_stage(stage_name(sys.argv[1:]), main)
