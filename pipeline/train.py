"""Stage `train`: the multi-head VAE of MNIST digits -> models/vae/, one MLflow run per training.

With `train.nproc: N > 1` the stage re-launches itself under torchrun (torch.distributed)
with N processes (latentsteer.train_stage).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latentsteer.config import section
from latentsteer.domains.mnist.domain import MNIST
from latentsteer.domains.mnist.labelled import load_labelled
from latentsteer.stage import run_stage
from latentsteer.tracking import data_hash
from latentsteer.train import TrainConfig
from latentsteer.train_stage import TrainingData, model_config, run_training

RAW = "data/raw"
LABELS = "data/labels"
OUT = "models/vae"
CHECKPOINT = Path("checkpoints/train/last.pt")  # git-ignored; survives a killed run


def main(params: dict[str, Any]) -> None:
    mcfg = model_config(params.get("model"))
    cfg = section(params, "train", TrainConfig)

    def load(device: torch.device) -> TrainingData:
        train = load_labelled(RAW, LABELS, "train", mcfg.heads, cfg.limit).to(device)
        val = load_labelled(RAW, LABELS, "val", mcfg.heads, cfg.limit).to(device)
        return TrainingData(train, val, MNIST, data_hash(RAW, LABELS))

    run_training("train", __file__, mcfg, cfg, load, OUT, CHECKPOINT)


if __name__ == "__main__":
    run_stage("train", main)
