"""Stage `context`: what every optimize stage reads -> models/steering_context.npz.

The certifier's features of the realism reference (the last `optimize.reference` test digits)
and the codes of the first `optimize.knn_codes` training digits under the calibrated VAE.
Computing them once here saves each optimize and group stage about 3.5 s on 2 CPU cores.
"""

from __future__ import annotations

from typing import Any

from latentsteer.config import section
from latentsteer.domains.mnist.steering_context import load_context, write_context_file
from latentsteer.optimize_config import OptimizeConfig
from latentsteer.stage import run_stage

MODEL, JUDGE, RAW, LABELS = "models/vae_calibrated", "models/judge", "data/raw", "data/labels"
CERTIFIER = "models/certifier"  # grades results and gives the realism features
OUT = "models/steering_context.npz"


def main(params: dict[str, Any]) -> None:
    cfg = section(params, "optimize", OptimizeConfig)
    ctx = load_context(MODEL, JUDGE, RAW, LABELS, cfg, certifier_dir=CERTIFIER)
    write_context_file(ctx, OUT)
    print(
        f"context: certifier features of {len(ctx.reference)} reference digits, "
        f"{len(ctx.train_codes)} kNN codes -> {OUT}"
    )


if __name__ == "__main__":
    run_stage("context", main)
