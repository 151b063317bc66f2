"""Stages `train_judge` and `train_certifier`: the independent data-space digit classifiers.

``python pipeline/train_judge.py`` trains the judge (params ``judge``) into models/judge/;
``python pipeline/train_judge.py certifier`` trains the certifier (params ``certifier``)
into models/certifier/. Each logs one MLflow run named after its stage.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from typing import Any

import torch

from latentsteer import tracking
from latentsteer.config import section
from latentsteer.devices import resolve_device
from latentsteer.domains.mnist.datasets import load_split
from latentsteer.domains.mnist.judge import (
    CertifierConfig,
    JudgeConfig,
    accuracy,
    save_judge,
    train_judge,
)
from latentsteer.stage import run_stage
from latentsteer.tracking import data_hash

RAW = "data/raw"
CONFIGS: dict[str, type[JudgeConfig]] = {"judge": JudgeConfig, "certifier": CertifierConfig}


def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_split(RAW, split)
    return torch.as_tensor(images, dtype=torch.float32) / 255.0, torch.as_tensor(labels)


def main(params: dict[str, Any], name: str) -> None:
    """Train the classifier of params section ``name`` into ``models/<name>``."""
    stage, out = f"train_{name}", f"models/{name}"
    cfg = section(params, name, CONFIGS[name])
    device = resolve_device(cfg.device)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = map(tensors, ("train", "val", "test"))
    tags = {"data_hash": data_hash(RAW)}
    with tracking.start_run(stage, stage=stage, tags=tags, domain="mnist") as run:
        run.log_params({name: asdict(cfg)})
        start = time.perf_counter()
        judge = train_judge(x_train, y_train, cfg, device)
        seconds = time.perf_counter() - start
        metrics = {
            "val_accuracy": accuracy(judge, x_val, y_val),
            "test_accuracy": accuracy(judge, x_test, y_test),
        }
        # Wall time goes to MLflow only: the model folder stays byte-identical across reruns.
        save_judge(judge, out, metrics, cfg)
        run.log_metrics({**metrics, "train_seconds": seconds})
        run.log_artifacts(out, name)
    print(
        f"{stage}: {cfg.arch}, test accuracy {metrics['test_accuracy']:.4f}, val "
        f"{metrics['val_accuracy']:.4f}, {seconds:.0f} s on {device} -> {out}/"
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) > 1 or (args and args[0] not in CONFIGS):
        print(f"usage: python pipeline/train_judge.py [{' | '.join(CONFIGS)}]", file=sys.stderr)
        sys.exit(2)
    which = args[0] if args else "judge"
    run_stage(f"train_{which}", lambda params: main(params, which))
