"""Benchmark: the molecule baseline's Bayesian optimisation (short, warm-started GP fits and a
smaller acquisition) against the shared engine's default settings, in the same run, on the
same starts, budget and RDKit oracle.

    python benchmarks/bench_molecule_bayesopt.py [--experiment qed_translation] [--starts 40]

Needs the molecule model and labels (`dvc repro molecules_train`). Both sides steer the first
``--starts`` starts of a `molecules.experiments` entry of params.yaml with method `bayesopt`
and print RDKit's success, the calls spent and the wall time; the ratio is the default's time
over the molecule setting's. The inverted start codes are computed once and shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import yaml

import latentsteer.bayesopt as bayesopt
from latentsteer.config import section
from latentsteer.domains.molecules.context import MoleculeContext
from latentsteer.domains.molecules.domain import MOLECULES
from latentsteer.domains.molecules.experiments import MoleculeExperimentConfig, select_starts
from latentsteer.domains.molecules.labelled import read_molecule_labels
from latentsteer.domains.molecules.proposers import propose_for
from latentsteer.domains.molecules.starts import read_starts
from latentsteer.experiment_config import configure
from latentsteer.loading import load_model

MODEL, LABELS = "models/molecules/vae", "data/molecules/labels"


def cpu_model() -> str:
    """The CPU's model name (times differ widely between machines), else the architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class EngineDefaults(bayesopt.BayesOpt):
    """The shared engine's settings, whatever the caller asks for beyond the problem."""

    def __init__(self, start, box, init, q, seed, **_ignored) -> None:
        super().__init__(start, box, init, q, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="qed_translation")
    parser.add_argument("--starts", type=int, default=40)
    args = parser.parse_args()
    with open("params.yaml") as f:
        experiments = yaml.safe_load(f)["molecules"]["experiments"]
    key = f"molecules.experiments.{args.experiment}"
    cfg = section({key: experiments[args.experiment]}, key, MoleculeExperimentConfig)
    model = load_model(MODEL, "cpu")
    test = read_molecule_labels(LABELS, "test")
    chosen = select_starts(test, model.domain.vocabulary, cfg.start_config)  # type: ignore[attr-defined]
    starts = read_starts(model, chosen.canonical.tolist()).first(args.starts)
    delta = 0.4 if 0.4 in cfg.thresholds else cfg.thresholds[0]
    task = configure(
        MOLECULES,
        {
            "goals": cfg.goals,
            "similarity": delta,
            "bounds": cfg.bounds,
            "budget": cfg.budget,
            "method": "bayesopt",
            "seed": cfg.seed,
        },
    )
    # the inverted codes bayesopt starts from, made once for both runs
    proposals = propose_for(model, starts.tokens, replace(task, method="latent"))
    print(f"{cpu_model()}, {os.cpu_count()} cores; "
          f"{args.experiment}, {len(starts.smiles)} starts, δ = {delta:g}, "
          f"budget {task.budget}")  # fmt: skip

    def run(label: str) -> float:
        ctx = MoleculeContext(model, Path(LABELS))  # its own RDKit cache: nothing shared
        began = time.perf_counter()
        m = ctx.steer(task, starts, proposals).metrics
        wall = time.perf_counter() - began
        print(f"{label:<34}: {wall:7.1f} s, success {m['success_rate']:.1%}, "
              f"{m['oracle_calls']:.1f} RDKit calls a start", flush=True)  # fmt: skip
        return wall

    original = bayesopt.BayesOpt
    try:
        bayesopt.BayesOpt = EngineDefaults  # type: ignore[misc]
        slow = run("baseline, the engine's defaults")
    finally:
        bayesopt.BayesOpt = original  # type: ignore[misc]
    fast = run("molecule setting (baselines.py)")
    print(f"ratio defaults / molecule setting: {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
