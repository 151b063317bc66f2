"""Stage `molecules_labels`: RDKit properties and SELFIES of every molecule ->
data/molecules/labels/{split}.parquet."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from latentsteer.atomic import atomic_dir, write_json
from latentsteer.config import section
from latentsteer.domains.molecules.properties import measure_molecules
from latentsteer.stage import run_stage

RAW = "data/molecules/raw"
OUT = "data/molecules/labels"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class MoleculeLabelsConfig:
    """params.yaml: molecules.labels."""

    workers: int | None = None  # processes; null = one per core. Does not change results.

    def __post_init__(self) -> None:
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(
                f"molecules.labels.workers must be a positive integer or null; got {self.workers!r}"
            )


def main(params: dict[str, Any]) -> None:
    labels = (params.get("molecules") or {}).get("labels") or {}
    cfg = section({"molecules.labels": labels}, "molecules.labels", MoleculeLabelsConfig)
    raw = {s: pd.read_parquet(f"{RAW}/{s}.parquet") for s in SPLITS}
    # One call over all splits keeps every worker busy for the whole run.
    smiles = [c or s for t in raw.values() for s, c in zip(t.smiles, t.canonical, strict=True)]
    start = time.perf_counter()
    table = measure_molecules(smiles, workers=cfg.workers)
    seconds = time.perf_counter() - start
    report = {}
    with atomic_dir(OUT) as tmp:
        offset = 0
        for split in SPLITS:
            n = len(raw[split])
            part = table.iloc[offset : offset + n].reset_index(drop=True)
            offset += n
            frame = pd.concat([raw[split][["source"]], part], axis=1)
            frame.to_parquet(tmp / f"{split}.parquet", index=False)
            report[split] = {
                "molecules": n,
                "invalid": int((~part.valid).sum()),
                "no_selfies": int((part.valid & part.selfies.isna()).sum()),
            }
        write_json(report, tmp / "labels.json")
    print(f"molecules_labels: {len(table)} molecules in {seconds:.1f} s -> {OUT}/: {report}")


if __name__ == "__main__":
    run_stage("molecules_labels", main)
