"""A VAE training stage of any domain: settings, processes, one MLflow run, the model folder.

Each domain's stage script (``pipeline/train.py``, ``pipeline/molecules/train.py``) only
says where its data come from; this module does the rest the same way for every domain.
With ``train.nproc: N > 1`` the script re-launches itself under torchrun
(torch.distributed) with N processes: gloo on CPU, NCCL with one GPU per process on CUDA.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from latentsteer import tracking
from latentsteer.config import section
from latentsteer.devices import resolve_device
from latentsteer.domain import Domain
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE, save_model
from latentsteer.train import Dataset, TrainConfig, dist_info, fit


def model_config(raw: dict[str, Any] | None, key: str = "model") -> ModelConfig:
    """``params.yaml`` model settings → ModelConfig, checking every head by its own key path.

    Args:
        raw: the settings (``params["model"]``); ``None`` takes the defaults.
        key: their key path, for messages (``molecules.model``).
    """
    raw = dict(raw or {})
    heads_raw = raw.pop("heads", None)
    cfg = section({key: raw}, key, ModelConfig)
    if heads_raw is None:
        return cfg
    if not isinstance(heads_raw, list) or not heads_raw:
        raise ValueError(f"params.yaml: {key}.heads must be a non-empty list of heads")
    heads = tuple(
        section({f"{key}.heads[{i}]": h}, f"{key}.heads[{i}]", HeadSpec)
        for i, h in enumerate(heads_raw)
    )
    return dataclasses.replace(cfg, heads=heads)


@dataclass
class TrainingData:
    """What a domain's stage supplies.

    Attributes:
        train, val: samples and head targets, on the training device.
        domain: the domain as these data configure it (molecules: their vocabulary).
        data_hash: a digest of the data files, tagged on the MLflow run.
    """

    train: Dataset
    val: Dataset
    domain: Domain
    data_hash: str


def run_training(
    stage: str,
    script: str,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    load: Callable[[torch.device], TrainingData],
    out: str,
    checkpoint: Path,
) -> None:
    """Train a model of ``model_cfg`` on ``load(device)``'s data and write the folder ``out``.

    Args:
        stage: the stage's name (MLflow run name and ``stage`` tag).
        script: the stage script's path, re-launched under torchrun when ``cfg.nproc > 1``.
        checkpoint: epoch checkpoints (git-ignored), which ``cfg.resume`` continues from.
    """
    if cfg.nproc > 1 and "LOCAL_RANK" not in os.environ:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={cfg.nproc}", os.path.abspath(script),
        ]  # fmt: skip
        sys.exit(subprocess.run(command).returncode)
    device = resolve_device(cfg.device)
    if "LOCAL_RANK" in os.environ:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist.get_world_size()))
    info = dist_info()

    data = load(device)
    torch.manual_seed(cfg.seed)
    model = MultiHeadVAE(model_cfg, data.domain).to(device)
    model.set_target_scaling(data.train.targets)

    tags = {"data_hash": data.data_hash, "device": str(device), "nproc": str(info.world)}
    domain = model_cfg.domain
    opened = (
        tracking.start_run(stage, stage=stage, tags=tags, domain=domain)
        if info.is_main
        else nullcontext()
    )
    with opened as run:
        if run is not None:
            run.log_params({"model": asdict(model_cfg), "train": asdict(cfg)})
        start = time.perf_counter()
        history = fit(
            model, data.train, data.val, cfg, checkpoint=checkpoint,
            on_epoch=(lambda e, m: run.log_metrics(m, step=e)) if run is not None else None,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        if info.is_main:
            final = {k: v for k, v in history[-1].items() if k.startswith("val_")}
            # Wall time goes to MLflow only: metrics.json stays byte-identical across reruns.
            metrics = {**final, "epochs": len(history)}
            save_model(model, out, {**metrics, "history": history})
            run.log_metrics({"train_seconds": seconds})
            run.log_artifacts(out, "model")
            summary = ", ".join(f"{k[4:]} {v:.4g}" for k, v in final.items())
            print(f"{stage}: {len(history)} epochs in {seconds:.0f} s on {device}: {summary} "
                  f"-> {out}/")  # fmt: skip
    if info.world > 1:
        dist.destroy_process_group()
