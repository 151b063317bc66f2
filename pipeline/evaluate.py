"""Stage `evaluate`: test-set metrics and figures for the VAE, checked by the oracles.

Writes reports/evaluate.json (DVC metrics), reports/figures/*.png and
reports/plots/thickness.csv (DVC plots), and logs all of it to one MLflow run.
Reconstructions are measured as the labels stage measured the test digits (`labels.*`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latentsteer.stage import run_stage

# The heavy imports live in main(), so that reading this file (usage errors, tests of its
# helpers) stays cheap.

REPORT = Path("reports/evaluate.json")
FIGURES = Path("reports/figures")
PLOT_CSV = Path("reports/plots/thickness.csv")


def main(params: dict[str, Any]) -> None:
    import numpy as np
    import pandas as pd
    import torch

    from latentsteer import tracking
    from latentsteer.atomic import write_json, write_table
    from latentsteer.config import section
    from latentsteer.devices import resolve_device
    from latentsteer.domains.mnist.datasets import load_split
    from latentsteer.domains.mnist.evaluation import evaluate, latent_traversal
    from latentsteer.domains.mnist.grids import save_grid
    from latentsteer.domains.mnist.judge import load_judge
    from latentsteer.domains.mnist.labelled import read_labels
    from latentsteer.domains.mnist.morphometry import MorphometryConfig
    from latentsteer.loading import load_model
    from latentsteer.plots import save_confusion, save_scatter
    from latentsteer.tracking import data_hash

    span = tracking.Span.begin()  # the run spans the work, not just the logging
    labels_cfg = dict(params.get("labels") or {})
    labels_cfg.pop("workers", None)  # the labels stage's processes: not part of the definition
    measure_cfg = section({"labels": labels_cfg}, "labels", MorphometryConfig)
    device = resolve_device(str((params.get("train") or {}).get("device", "auto")))
    model = load_model("models/vae", device)
    judge = load_judge("models/judge", device)
    images_u8, _ = load_split("data/raw", "test")
    images = torch.as_tensor(images_u8, dtype=torch.float32) / 255.0
    labels = read_labels("data/labels", "test")
    result = evaluate(model, judge, images, labels, measure_config=measure_cfg)
    m = result.metrics

    FIGURES.mkdir(parents=True, exist_ok=True)
    pairs = torch.stack([result.originals[:16], result.reconstructions[:16]], dim=1)  # (16, 2, ..)
    save_grid(pairs.reshape(4, 8, 28, 28), FIGURES / "reconstructions.png")
    digit_head = next(h for h in model.config.heads if h.kind == "class" and h.column == "digit")
    accuracy = m[f"{digit_head.name}_accuracy"]
    save_confusion(
        labels["digit"].to_numpy(), result.predictions[digit_head.name],
        FIGURES / "confusion.png", f"digit head on test codes (accuracy {accuracy:.4f})",
    )  # fmt: skip
    thick_head = next(
        (h for h in model.config.heads if h.kind == "regression" and h.column == "thickness"), None
    )
    if thick_head is not None:
        measured = labels["thickness"].to_numpy()
        predicted = result.predictions[thick_head.name]
        save_scatter(
            measured, predicted, FIGURES / "thickness_pred_vs_measured.png",
            "measured thickness (px)", "predicted thickness (px)",
            f"thickness head, R² {m[thick_head.name + '_r2']:.3f}",
        )  # fmt: skip
        rows = pd.DataFrame({"measured": measured, "predicted": predicted}).dropna().iloc[:2000]
        write_table(rows.round(4), PLOT_CSV)
    start = model.encode(images[:1])[0]
    save_grid(latent_traversal(model, start, list(range(model.latent_dim))),
              FIGURES / "latent_traversal.png")  # fmt: skip
    write_json(m, REPORT)
    span.end()

    tags = {"data_hash": data_hash("data/raw", "data/labels")}
    with tracking.start_run(
        "evaluate", stage="evaluate", tags=tags, domain="mnist", span=span
    ) as run:
        run.log_metrics(m)
        run.log_artifacts(FIGURES, "figures")
        run.log_artifact(REPORT)
    keys = [k for k in m if k.endswith(("accuracy", "_r2", "pearson_r")) or k == "neg_elbo_nats"]
    print("evaluate: " + ", ".join(f"{k} {m[k]:.4g}" for k in keys))
    if not np.isfinite(m["neg_elbo_nats"]):
        raise ValueError("evaluation produced a non-finite ELBO; the model is broken")


if __name__ == "__main__":
    run_stage("evaluate", main)
