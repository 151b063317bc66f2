"""Stage `labels`: Morpho-MNIST measures of every image into data/labels/{split}.parquet."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from latentsteer.atomic import atomic_dir
from latentsteer.config import section
from latentsteer.domains.mnist.datasets import SPLITS, load_split
from latentsteer.domains.mnist.morphometry import MorphometryConfig, measure
from latentsteer.stage import run_stage

RAW = "data/raw"
OUT = "data/labels"


@dataclass(frozen=True)
class LabelsConfig:
    """params.yaml: labels. Only ``workers`` leaves the output unchanged."""

    threshold: float = 0.5  # binarise at this fraction between the upscaled min and max
    scale: int = 4  # upscaling factor for sub-pixel measures
    bound_frac: float = 0.02  # mass dropped by the bounding parallelogram
    chunk_size: int = 128  # images per medial-axis mosaic (fixes skeleton tie-breaking)
    workers: int | None = None  # processes; null = one per core. Not a DVC dependency.

    def morphometry(self) -> MorphometryConfig:
        fields = asdict(self)
        fields.pop("workers")
        return MorphometryConfig(**fields)


def main(params: dict[str, Any]) -> None:
    cfg = section(params, "labels", LabelsConfig)
    morph = cfg.morphometry()
    data = {split: load_split(RAW, split) for split in SPLITS}
    # One call over all splits keeps every worker busy for the whole run.
    images = np.concatenate([data[s][0] for s in SPLITS])
    start = time.perf_counter()
    table = measure(images, workers=cfg.workers, config=morph, progress=True)
    seconds = time.perf_counter() - start
    with atomic_dir(OUT) as tmp:
        offset = 0
        for split in SPLITS:
            labels = data[split][1]
            part = table.iloc[offset : offset + len(labels)].reset_index(drop=True)
            offset += len(labels)
            frame = pd.concat(
                [pd.DataFrame({"index": np.arange(len(labels)), "digit": labels}), part], axis=1
            )
            frame.to_parquet(tmp / f"{split}.parquet", index=False)
    print(
        f"labels: measured {len(images)} images in {seconds:.1f} s "
        f"({len(images) / seconds:.0f} img/s) -> {OUT}/"
    )


if __name__ == "__main__":
    run_stage("labels", main)
