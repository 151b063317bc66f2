"""Stage `molecules_download`: MOSES from the molsets wheel, verified, split and
canonicalised -> data/molecules/raw/."""

from __future__ import annotations

from typing import Any

from latentsteer.config import section
from latentsteer.domains.molecules.moses import MosesConfig, download
from latentsteer.stage import run_stage

OUT = "data/molecules/raw"
FILTERS = "data/molecules/filters.csv"  # the MOSES filters' alerts, for evaluation


def main(params: dict[str, Any]) -> None:
    data = (params.get("molecules") or {}).get("data") or {}
    cfg = section({"molecules.data": data}, "molecules.data", MosesConfig)
    report = download(cfg, OUT, FILTERS)
    counts = ", ".join(
        f"{s} {report[s]['molecules']} ({report[s]['rdkit_failed']} unreadable)"  # type: ignore[index]
        for s in ("train", "val", "test")
    )
    print(f"molecules_download: MOSES, hash-verified: {counts} -> {OUT}/")


if __name__ == "__main__":
    run_stage("molecules_download", main)
