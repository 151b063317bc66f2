"""Stage `train_judge`: the independent data-space digit classifier -> models/judge/."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import torch

from latentsteer import tracking
from latentsteer.config import section
from latentsteer.datasets import load_split
from latentsteer.judge import JudgeConfig, accuracy, save_judge, train_judge
from latentsteer.labelled import data_hash
from latentsteer.stage import run_stage
from latentsteer.train import resolve_device

RAW = "data/raw"
OUT = "models/judge"


def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_split(RAW, split)
    return torch.as_tensor(images, dtype=torch.float32) / 255.0, torch.as_tensor(labels)


def main(params: dict[str, Any]) -> None:
    cfg = section(params, "judge", JudgeConfig)
    device = resolve_device(cfg.device)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = map(tensors, ("train", "val", "test"))
    tags = {"data_hash": data_hash(RAW)}
    with tracking.start_run("train_judge", stage="train_judge", tags=tags) as run:
        run.log_params({"judge": asdict(cfg)})
        start = time.perf_counter()
        judge = train_judge(x_train, y_train, cfg, device)
        seconds = time.perf_counter() - start
        metrics = {
            "val_accuracy": accuracy(judge, x_val, y_val),
            "test_accuracy": accuracy(judge, x_test, y_test),
        }
        # Wall time goes to MLflow only: the model folder stays byte-identical across reruns.
        save_judge(judge, OUT, metrics, cfg)
        run.log_metrics({**metrics, "train_seconds": seconds})
        run.log_artifacts(OUT, "judge")
    print(
        f"train_judge: test accuracy {metrics['test_accuracy']:.4f}, val "
        f"{metrics['val_accuracy']:.4f}, {seconds:.0f} s on {device} -> {OUT}/"
    )


if __name__ == "__main__":
    run_stage("train_judge", main)
