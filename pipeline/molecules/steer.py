"""Stage `molecules_steer@<name>`: one molecule steering experiment of params.yaml
(`molecules.experiments.<name>`), latent ascent and its baselines on the same starts.

Writes reports/molecules/steer/<name>/<method>_d<δ>/{molecules.csv, metrics.json, grid.png}
for every method and threshold, and reports/molecules/steer/<name>.json (DVC metrics: every
row), and logs one MLflow run in `latentsteer-molecules`, from the start of the experiment's
work (the model read) to its end (the results written). RDKit measures every result; the
heads' verdicts are reported beside it, never instead.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from latentsteer.stage import run_stage

MODEL = "models/molecules/vae"
LABELS = "data/molecules/labels"
OUT = Path("reports/molecules/steer")


def main(params: dict[str, Any], name: str) -> None:
    from latentsteer import tracking
    from latentsteer.atomic import atomic_dir, write_json
    from latentsteer.config import section
    from latentsteer.devices import resolve_device
    from latentsteer.domains.molecules.context import MoleculeContext
    from latentsteer.domains.molecules.domain import MOLECULES
    from latentsteer.domains.molecules.experiments import MoleculeExperimentConfig, select_starts
    from latentsteer.domains.molecules.labelled import read_molecule_labels
    from latentsteer.domains.molecules.proposers import propose_for
    from latentsteer.domains.molecules.starts import read_starts
    from latentsteer.experiment_config import configure
    from latentsteer.loading import load_model
    from latentsteer.tracking import data_hash

    molecules = params.get("molecules") or {}
    experiments = molecules.get("experiments") or {}
    if name not in experiments:
        raise ValueError(f"no molecules.experiments.{name}; have: {', '.join(experiments)}")
    key = f"molecules.experiments.{name}"
    cfg = section({key: experiments[name]}, key, MoleculeExperimentConfig)
    span = tracking.Span.begin()  # the run, logged once the results are in place, starts here
    device = resolve_device(str((molecules.get("train") or {}).get("device", "auto")))
    model = load_model(MODEL, device)
    if model.domain.name != MOLECULES.name:
        raise ValueError(f"{MODEL} holds a {model.domain.name} model, not a molecule model")
    # Every experiment of the grid shares the context: the training molecules, their
    # fingerprints, the calibration and RDKit's measures are read or made once.
    ctx = MoleculeContext(model, Path(LABELS))
    test = read_molecule_labels(LABELS, "test")
    chosen = select_starts(test, model.domain.vocabulary, cfg.start_config)  # type: ignore[attr-defined]
    starts = read_starts(model, chosen.canonical.tolist())
    base = configure(MOLECULES, {
        "goals": cfg.goals, "similarity": cfg.thresholds[0], "bounds": cfg.bounds,
        "budget": cfg.budget, "method": cfg.method, "guide": cfg.guide, "seed": cfg.seed,
    })  # fmt: skip
    proposals = None
    if cfg.method == "latent" and cfg.guide:  # the first round, proposed once for every threshold
        proposals = propose_for(model, starts.tokens, base)
    few = cfg.baseline_starts if cfg.baseline_starts is not None else len(starts.smiles)
    subset = starts.first(min(few, len(starts.smiles)))
    sub_proposals = None if proposals is None else proposals.first(len(subset.smiles))
    rows: dict[str, dict[str, Any]] = {}
    with atomic_dir(OUT / name) as tmp:
        for delta in cfg.thresholds:
            baselines = cfg.baselines_at(delta)
            runs = [(cfg.method, starts, proposals)]
            runs += [(b, subset, sub_proposals) for b in baselines]
            for method, group, props in runs:
                # a baseline is never unguarded: only the experiment's own method may be
                guide = base.guide if method == cfg.method else True
                run = replace(base, similarity=delta, method=method, guide=guide)
                outcome = ctx.steer(run, group, props)
                label = f"{method}_d{delta:g}" + (
                    "" if group is starts else f"_first{len(group.smiles)}"
                )
                done = [(label, outcome)]
                if group is starts and baselines and len(subset.smiles) < len(starts.smiles):
                    # the method's row on the baselines' starts: its rows for them, read off
                    # this run (each start is steered on its own), not a second run
                    done.append((f"{label}_first{len(subset.smiles)}",
                                 outcome.first(len(subset.smiles), ctx.dataset)))  # fmt: skip
                for label, outcome in done:
                    outcome.write(Path(tmp) / label)
                    rows[label] = outcome.metrics
                    print(
                        f"molecules_steer@{name}: {label}: success "
                        f"{outcome.metrics['success_rate']:.3f} "
                        f"(heads {outcome.metrics['predicted_success_rate']}), "
                        f"{outcome.metrics['wall_s']:.0f} s",
                        file=sys.stderr,
                    )
    write_json(rows, OUT / f"{name}.json")
    span.end()
    with tracking.start_run(
        f"molecules_steer_{name}",
        stage=f"molecules_steer@{name}",
        tags={"data_hash": data_hash(LABELS)},
        domain="molecules",
        span=span,
    ) as run:
        for label, m in rows.items():
            run.log_metrics(
                {
                    f"{label}.{k}": v
                    for k, v in m.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                }
            )
        run.log_artifact(OUT / f"{name}.json")
    head = next(iter(rows.values()))
    print(
        f"molecules_steer@{name}: {head['method']} success {head['success_rate']:.3f}, "
        f"heads {head['predicted_success_rate']}, gap {head['success_gap']}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python pipeline/molecules/steer.py EXPERIMENT")
    experiment = sys.argv[1]
    run_stage(f"molecules_steer@{experiment}", lambda params: main(params, experiment))
