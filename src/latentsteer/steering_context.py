"""Load what every steering experiment reads: model, judge, realism reference, kNN codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentsteer.datasets import load_split
from latentsteer.experiment import Context
from latentsteer.judge import load_judge
from latentsteer.labelled import read_labels
from latentsteer.model import load_model
from latentsteer.optimize_config import OptimizeConfig
from latentsteer.train import resolve_device


def load_context(
    model_dir: str | Path,
    judge_dir: str | Path,
    data_root: str | Path,
    labels_root: str | Path,
    cfg: OptimizeConfig,
) -> Context:
    """Model and judge on ``cfg.device``, the last ``cfg.reference`` test digits (with labels
    and measured thickness) as the realism reference, kept apart from ``test:A-B`` starts,
    which count from 0, and the codes of the first ``cfg.knn_codes`` training digits."""
    device = resolve_device(cfg.device)
    model = load_model(model_dir, device)
    judge = load_judge(judge_dir, device)
    test, test_labels = load_split(data_root, "test")
    train, _ = load_split(data_root, "train")
    reference = torch.as_tensor(test[-cfg.reference :], dtype=torch.float32) / 255.0
    thickness = read_labels(labels_root, "test").thickness.iloc[-cfg.reference :]
    train_x = torch.as_tensor(train[: cfg.knn_codes], dtype=torch.float32) / 255.0
    with torch.no_grad():
        codes = model.encode(train_x.to(device))  # (k, d) posterior means
    return Context(
        model, judge, reference, np.asarray(test_labels[-cfg.reference :]),
        thickness.to_numpy(), codes, data_root, cfg.workers,
    )  # fmt: skip
