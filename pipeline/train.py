"""Stage `train`: the multi-head VAE -> models/vae/, one MLflow run per training.

With `train.nproc: N > 1` the stage re-launches itself under torchrun (torch.distributed)
with N processes: gloo on CPU, NCCL with one GPU per process on CUDA.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from latentsteer import tracking
from latentsteer.config import section
from latentsteer.devices import resolve_device
from latentsteer.domains.mnist.labelled import data_hash, load_labelled
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE, save_model
from latentsteer.stage import run_stage
from latentsteer.train import TrainConfig, dist_info, fit

RAW = "data/raw"
LABELS = "data/labels"
OUT = "models/vae"
CHECKPOINT = Path("checkpoints/train/last.pt")  # git-ignored; survives a killed run


def model_config(params: dict[str, Any]) -> ModelConfig:
    """params.model → ModelConfig, validating every head entry by its own key path."""
    raw = dict(params.get("model") or {})
    heads_raw = raw.pop("heads", None)
    cfg = section({"model": raw}, "model", ModelConfig)
    if heads_raw is None:
        return cfg
    if not isinstance(heads_raw, list) or not heads_raw:
        raise ValueError("params.yaml: model.heads must be a non-empty list of heads")
    heads = tuple(
        section({f"model.heads[{i}]": h}, f"model.heads[{i}]", HeadSpec)
        for i, h in enumerate(heads_raw)
    )
    return dataclasses.replace(cfg, heads=heads)


def relaunch_under_torchrun(nproc: int) -> None:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", os.path.abspath(__file__),
    ]  # fmt: skip
    sys.exit(subprocess.run(cmd).returncode)


def main(params: dict[str, Any]) -> None:
    mcfg = model_config(params)
    cfg = section(params, "train", TrainConfig)
    if cfg.nproc > 1 and "LOCAL_RANK" not in os.environ:
        relaunch_under_torchrun(cfg.nproc)
    device = resolve_device(cfg.device)
    if "LOCAL_RANK" in os.environ:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist.get_world_size()))
    info = dist_info()

    train = load_labelled(RAW, LABELS, "train", mcfg.heads, cfg.limit).to(device)
    val = load_labelled(RAW, LABELS, "val", mcfg.heads, cfg.limit).to(device)
    torch.manual_seed(cfg.seed)
    model = MultiHeadVAE(mcfg).to(device)
    model.set_target_scaling(train.targets)

    tags = {"data_hash": data_hash(RAW, LABELS), "device": str(device), "nproc": str(info.world)}
    opened = (
        tracking.start_run("train", stage="train", tags=tags, domain="mnist")
        if info.is_main
        else nullcontext()
    )
    with opened as run:
        if run is not None:
            run.log_params({"model": asdict(mcfg), "train": asdict(cfg)})
        start = time.perf_counter()
        history = fit(
            model, train, val, cfg, checkpoint=CHECKPOINT,
            on_epoch=(lambda e, m: run.log_metrics(m, step=e)) if run is not None else None,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        if info.is_main:
            final = {k: v for k, v in history[-1].items() if k.startswith("val_")}
            # Wall time goes to MLflow only: metrics.json stays byte-identical across reruns.
            metrics = {**final, "epochs": len(history)}
            save_model(model, OUT, {**metrics, "history": history})
            run.log_metrics({"train_seconds": seconds})
            run.log_artifacts(OUT, "model")
            summary = ", ".join(f"{k[4:]} {v:.4g}" for k, v in final.items())
            print(
                f"train: {len(history)} epochs in {seconds:.0f} s on {device}: {summary} -> {OUT}/"
            )
    if info.world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    run_stage("train", main)
