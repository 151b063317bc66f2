"""Stage `calibrate`: fit the regression heads to measured decoded images -> models/vae_calibrated/.

The optimize stages steer with this model. Why, and what changes: src/latentsteer/calibrate.py.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from latentsteer.stage import run_stage

# Measuring workers are spawned and import this file again: the heavy imports live in
# main() so that each worker starts in about 1 s instead of 4.

RAW = "data/raw"
IN = "models/vae"
OUT = "models/vae_calibrated"


def main(params: dict[str, Any]) -> None:
    import torch

    from latentsteer import tracking
    from latentsteer.calibrate import CalibrateConfig, calibrate
    from latentsteer.config import section
    from latentsteer.datasets import load_split
    from latentsteer.labelled import data_hash
    from latentsteer.model import load_model, save_model
    from latentsteer.modelio import read_metrics
    from latentsteer.train import resolve_device

    cfg = section(params, "calibrate", CalibrateConfig)
    device = resolve_device(cfg.device)
    model = load_model(IN, device)
    images, _ = load_split(RAW, "train")
    x = torch.as_tensor(images[: cfg.posterior], dtype=torch.float32) / 255.0
    tags = {"data_hash": data_hash(RAW), "device": str(device)}
    with tracking.start_run("calibrate", stage="calibrate", tags=tags) as run:
        run.log_params({"calibrate": asdict(cfg)})
        start = time.perf_counter()
        report = calibrate(model, x, cfg)
        seconds = time.perf_counter() - start
        metrics = {**read_metrics(IN), **{f"calibration_{k}": v for k, v in report.items()}}
        save_model(model, OUT, metrics)  # wall time to MLflow only: the folder stays reproducible
        run.log_metrics({**report, "calibrate_seconds": seconds})
        run.log_artifacts(OUT, "model")
    changes = ", ".join(
        f"{k.removesuffix('_mae_before')} {v:.3f} -> {report[k.replace('before', 'after')]:.3f}"
        for k, v in report.items()
        if k.endswith("_mae_before")
    )
    print(f"calibrate: mean error on held-out prior draws {changes}, {seconds:.0f} s -> {OUT}/")


if __name__ == "__main__":
    run_stage("calibrate", main)
