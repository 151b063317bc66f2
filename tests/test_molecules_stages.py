"""The molecule stages refuse bad settings in one line naming the key, before any work."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def stage(name: str):
    path = REPO / "pipeline/molecules" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"molecules_stage_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"train": {"epochs": 0}}, "molecules.train.epochs must be a positive integer"),
        ({"train": {"lr": "fast"}}, "molecules.train.lr must be"),
        ({"model": {"domain": "mnist"}}, "molecules.model.domain must be molecules"),
        ({"model": {"domain": "proteins"}}, "unknown domain 'proteins'"),
        ({"model": {"heads": [{"name": "qed", "kind": "odd"}]}}, r"molecules.model.heads\[0\]"),
        ({"model": {"latent": 8}}, "unknown key molecules.model.latent"),
    ],
)
def test_bad_training_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        stage("train").main({"molecules": settings})


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"samples": 1}, "molecules.evaluate.samples must be an integer >= 2"),
        ({"grid": True}, "molecules.evaluate.grid must be"),
        ({"seeds": 3}, "unknown key molecules.evaluate.seeds"),
    ],
)
def test_bad_evaluation_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        stage("evaluate").main({"molecules": {"evaluate": settings}})
