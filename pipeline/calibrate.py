"""Stage `calibrate`: fit the regression heads to measured decoded images -> models/vae_calibrated/.

The optimize stages steer with this model. Why, and what changes:
src/latentsteer/domains/mnist/calibrate.py.
Decoded images are measured as the labels stage measures (`labels.threshold`, `scale`,
`bound_frac`, `chunk_size`), and the folder's config.json records that definition so that
the oracles grade steered results with it too.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from latentsteer.stage import run_stage

# The heavy imports live in main(), so that reading this file (usage errors, tests of its
# helpers) stays cheap.

RAW = "data/raw"
IN = "models/vae"
OUT = "models/vae_calibrated"


def main(params: dict[str, Any]) -> None:
    import torch

    from latentsteer import tracking
    from latentsteer.config import section
    from latentsteer.devices import resolve_device
    from latentsteer.domains.mnist.calibrate import CalibrateConfig, calibrate, save_calibrated
    from latentsteer.domains.mnist.datasets import load_split
    from latentsteer.domains.mnist.morphometry import MorphometryConfig
    from latentsteer.loading import load_model
    from latentsteer.modelio import read_metrics
    from latentsteer.tracking import data_hash

    cfg = section(params, "calibrate", CalibrateConfig)
    labels = dict(params.get("labels") or {})
    labels.pop("workers", None)  # the labels stage's processes: not part of the definition
    measure_cfg = section({"labels": labels}, "labels", MorphometryConfig)
    device = resolve_device(cfg.device)
    model = load_model(IN, device)
    images, _ = load_split(RAW, "train")
    x = torch.as_tensor(images[: cfg.posterior], dtype=torch.float32) / 255.0
    tags = {"data_hash": data_hash(RAW), "device": str(device)}
    with tracking.start_run("calibrate", stage="calibrate", tags=tags, domain="mnist") as run:
        run.log_params({"calibrate": asdict(cfg), "labels": asdict(measure_cfg)})
        start = time.perf_counter()
        report = calibrate(model, x, cfg, measure_config=measure_cfg)
        seconds = time.perf_counter() - start
        metrics = {**read_metrics(IN), **{f"calibration_{k}": v for k, v in report.items()}}
        # Wall time goes to MLflow only: the folder stays reproducible.
        save_calibrated(model, OUT, metrics, measure_cfg)
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
