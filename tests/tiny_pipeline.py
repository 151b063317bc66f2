"""A tiny copy of the real DVC pipeline: params, a repo copy, and runners for its commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "data": {"limit": 150},
    "labels": {"chunk_size": 64, "workers": 1},
    "judge": {"epochs": 1, "batch_size": 50},
    "certifier": {"epochs": 1, "batch_size": 50},
    "model": {"latent_dim": 4, "channels": 4, "hidden": 16, "head_hidden": 8},
    "train": {"epochs": 2, "batch_size": 50},
    "calibrate": {"posterior": 50, "prior": 50, "holdout": 20, "epochs": 2, "workers": 1},
    "optimize": {"reference": 40, "knn_codes": 50, "workers": 1},
    "property_tables": {"rows": 60},
    "molecules": {
        "data": {"train_size": 60, "val_size": 20, "test_size": 30},
        "labels": {"workers": 1},
        "model": {"latent_dim": 4, "channels": 4, "hidden": 16, "head_hidden": 8},
        "train": {"epochs": 1, "batch_size": 20},
        "evaluate": {"samples": 20, "grid": 4},
    },
}
# The tiny pipeline's experiments replace the default ones: one latent, one data-space, and
# a group of the three gradient-free baselines on the latent one's task (as in the defaults).
UP = {"goals": ["thickness=+0.5", "digit=keep"], "start": "random:6"}
TINY_EXPERIMENTS = {
    "up": {**UP, "steps": 4},
    "pixels": {"goals": ["thickness=max"], "method": "data_space", "start": "test:0-5",
               "steps": 3, "lr": 0.01, "readout": "code"},
}  # fmt: skip
TINY_GROUPS = {
    "up_baselines": {
        "up_random": {**UP, "task": "up", "method": "random_search", "model_budget": 9,
                      "population": 4},
        "up_cmaes": {**UP, "task": "up", "method": "cmaes", "model_budget": 9, "population": 4},
        "up_bayesopt": {**UP, "task": "up", "method": "bayesopt", "start": "random:3",
                        "model_budget": 6, "init": 3, "population": 3},
    }
}  # fmt: skip
# The tiny molecule experiments replace the default ones: an ascent graded at two
# thresholds with three baselines at one of them, and the unguarded counter-example.
TINY_MOLECULE_EXPERIMENTS = {
    "low": {"starts": {"n": 4, "lowest": "plogp"}, "goals": ["plogp=max"],
            "similarity": [0.0, 0.4], "baselines": ["random_search", "ga", "dataset"],
            "baseline_similarity": [0.4], "baseline_starts": 2, "budget": 5},
    "naive": {"starts": {"n": 3, "lowest": "plogp"}, "goals": ["plogp=max"],
              "similarity": 0.0, "method": "latent", "guide": False},
}  # fmt: skip
# Your own property, tiny: the digits' property on a few starts, and one molecule property
# (pIC50, the real 1 017-molecule table) steered from its 3 least active with budget 4.
TINY_PROPERTY_EXPERIMENTS = {
    "larger": {"property": "learned_area", "goals": ["learned_area>=+5", "digit=keep"],
               "start": "random:4"},
}  # fmt: skip
TINY_MOLECULE_PROPERTIES = {
    "pic50": {"table": "data/molecules/properties/pic50.csv", "column": "pic50"},
}
TINY_MOLECULE_PROPERTY_EXPERIMENTS = {
    "pic50_up": {"property": "pic50", "start": "lowest:3", "goals": ["pic50>=+1"],
                 "similarity": 0.4, "budget": 4, "baselines": ["table", "dataset", "ga"]},
}  # fmt: skip
PROPERTY_STAGES = (
    *(f"fit_property@{n}" for n in ("learned_area",)),
    *(f"steer_property@{n}" for n in TINY_PROPERTY_EXPERIMENTS),
)
MOLECULE_PROPERTY_STAGES = (
    *(f"molecules_fit_property@{n}" for n in TINY_MOLECULE_PROPERTIES),
    *(f"molecules_steer_property@{n}" for n in TINY_MOLECULE_PROPERTY_EXPERIMENTS),
)
# Every tiny experiment, group members included: name → (settings, results folder).
ALL_TINY = {
    **{name: (s, Path("results") / name) for name, s in TINY_EXPERIMENTS.items()},
    **{name: (s, Path("results") / group / name)
       for group, members in TINY_GROUPS.items() for name, s in members.items()},
}  # fmt: skip
# The stages that run experiments.
OPTIMIZE_STAGES = [f"optimize@{n}" for n in TINY_EXPERIMENTS] + [f"group@{g}" for g in TINY_GROUPS]


def tiny_params() -> dict:
    """The project's params.yaml with TINY's overrides: every declared key stays present."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, values in TINY.items():
        for key, value in values.items():  # one level deeper for sections of sections
            if isinstance(value, dict) and isinstance(params[name].get(key), dict):
                params[name][key].update(value)
            else:
                params[name][key] = value
    params["experiments"] = TINY_EXPERIMENTS
    params["groups"] = TINY_GROUPS
    params["molecules"]["experiments"] = TINY_MOLECULE_EXPERIMENTS
    params["property_experiments"] = TINY_PROPERTY_EXPERIMENTS
    params["molecules"]["properties"] = TINY_MOLECULE_PROPERTIES
    params["molecules"]["property_experiments"] = TINY_MOLECULE_PROPERTY_EXPERIMENTS
    return params


def tiny_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` = ours
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("LATENTSTEER_PARAMS", None)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=tiny_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


def copy_repo(dest: Path) -> Path:
    """Copy the project's tracked files into ``dest`` with tiny params, as its own git repo."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for rel in listed:
        src = REPO / rel
        if src.is_file() and rel != "dvc.lock":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    run(["git", "init", "-q"], dest)
    return dest
