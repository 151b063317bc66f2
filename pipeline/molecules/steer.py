"""Stage `molecules_steer@<name>`: one molecule steering experiment of params.yaml
(`molecules.experiments.<name>`), latent ascent and its baselines on the same starts.

Writes reports/molecules/steer/<name>/<method>_d<δ>/{molecules.csv, metrics.json, grid.png}
for every method and threshold, and reports/molecules/steer/<name>.json (DVC metrics: every
row), and logs one MLflow run in `latentsteer-molecules`. RDKit measures every result; the
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
    from latentsteer.domains.molecules.domain import MOLECULES
    from latentsteer.domains.molecules.experiments import MoleculeExperimentConfig, select_starts
    from latentsteer.domains.molecules.labelled import read_molecule_labels
    from latentsteer.domains.molecules.proposals import propose
    from latentsteer.domains.molecules.similarity import fingerprints
    from latentsteer.domains.molecules.steering import (
        property_spreads,
        read_starts,
        steer_molecules,
        write_outcome,
    )
    from latentsteer.domains.molecules.task import MoleculeTask
    from latentsteer.model import load_model
    from latentsteer.tracking import data_hash

    molecules = params.get("molecules") or {}
    experiments = molecules.get("experiments") or {}
    if name not in experiments:
        raise ValueError(f"no molecules.experiments.{name}; have: {', '.join(experiments)}")
    key = f"molecules.experiments.{name}"
    cfg = section({key: experiments[name]}, key, MoleculeExperimentConfig)
    device = resolve_device(str((molecules.get("train") or {}).get("device", "auto")))
    model = load_model(MODEL, device)
    if model.domain.name != MOLECULES.name:
        raise ValueError(f"{MODEL} holds a {model.domain.name} model, not a molecule model")
    test = read_molecule_labels(LABELS, "test")
    chosen = select_starts(test, model.domain.vocabulary, cfg.start_config)  # type: ignore[attr-defined]
    starts = read_starts(model, chosen.canonical.tolist())
    train = read_molecule_labels(LABELS, "train")
    train = train[train.valid].reset_index(drop=True)
    base = MoleculeTask(
        goals=cfg.goals,
        similarity=cfg.thresholds[0],
        bounds=cfg.bounds,
        budget=cfg.budget,
        method=cfg.method,
        seed=cfg.seed,
    )
    spread = property_spreads(model, base.properties)
    cache: dict[str, dict[str, float]] = {}
    proposals = None
    if cfg.method == "ascent":
        goals = [s.goal(model, tol=model.domain.tolerances[s.prop]) for s in base.specs]
        proposals = propose(
            model,
            starts.tokens,
            goals,
            steps=base.steps,
            replicas=base.replicas,
            lr=base.lr,
            token_samples=base.token_samples,
            temperature=base.temperature,
            invert_steps=base.invert_steps,
            noise=base.noise,
            seed=base.seed,
        )
    few = cfg.baseline_starts if cfg.baseline_starts is not None else len(starts.smiles)
    subset = _first(starts, min(few, len(starts.smiles)))
    sub_proposals = _first_proposals(proposals, len(subset.smiles))
    fps = fingerprints(train.canonical.tolist()) if "dataset" in cfg.baselines else None
    rows: dict[str, dict[str, Any]] = {}
    with atomic_dir(OUT / name) as tmp:
        for delta in cfg.thresholds:
            runs = [(cfg.method, starts, proposals)]
            baselines = cfg.baselines_at(delta)
            if baselines and len(subset.smiles) < len(starts.smiles):
                runs.append((cfg.method, subset, sub_proposals))  # the same starts as below
            runs += [(b, subset, sub_proposals) for b in baselines]
            for method, group, props in runs:
                task = replace(base, similarity=delta, method=method)
                outcome = steer_molecules(
                    model,
                    group,
                    task,
                    spread,
                    dataset=train,
                    dataset_fps=fps,
                    cache=cache,
                    proposals=props,
                )
                label = f"{method}_d{delta:g}" + (
                    "" if group is starts else f"_first{len(group.smiles)}"
                )
                write_outcome(outcome, Path(tmp) / label)
                rows[label] = outcome.metrics
                print(
                    f"molecules_steer@{name}: {label}: success {outcome.metrics['success']:.3f}"
                    f" (heads {outcome.metrics['heads_success']}), "
                    f"{outcome.metrics['wall_seconds']:.0f} s",
                    file=sys.stderr,
                )
    write_json(rows, OUT / f"{name}.json")
    with tracking.start_run(
        f"molecules_steer_{name}",
        stage=f"molecules_steer@{name}",
        tags={"data_hash": data_hash(LABELS)},
        domain="molecules",
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
        f"molecules_steer@{name}: {head['method']} success {head['success']:.3f}, "
        f"heads {head['heads_success']}, gap {head['success_gap']}"
    )


def _first(starts, k: int):
    """The first ``k`` of ``starts``."""
    from latentsteer.domains.molecules.steering import MoleculeStarts

    return MoleculeStarts(
        starts.inputs[:k],
        starts.smiles[:k],
        starts.tokens[:k],
        starts.values.iloc[:k].reset_index(drop=True),
    )


def _first_proposals(proposals, k: int):
    """The first ``k`` starts' proposals (``None`` stays ``None``)."""
    if proposals is None:
        return None
    return replace(
        proposals,
        smiles=proposals.smiles[:k],
        predicted=proposals.predicted[:k],
        similarity=proposals.similarity[:k],
        start_predicted=proposals.start_predicted.iloc[:k].reset_index(drop=True),
        codes=proposals.codes[:k],
        reconstructed=proposals.reconstructed[:k],
        model_calls=proposals.model_calls[:k],
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python pipeline/molecules/steer.py EXPERIMENT")
    experiment = sys.argv[1]
    run_stage(f"molecules_steer@{experiment}", lambda params: main(params, experiment))
