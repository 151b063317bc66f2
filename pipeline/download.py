"""Stage `download`: fetch MNIST from params.data.source, verify it, write data/raw/."""

from __future__ import annotations

from typing import Any

from latentsteer.config import section
from latentsteer.domains.mnist.datasets import DataConfig, download
from latentsteer.stage import run_stage

OUT = "data/raw"


def main(params: dict[str, Any]) -> None:
    cfg = section(params, "data", DataConfig)
    manifest = download(cfg, OUT)
    counts = ", ".join(f"{k} {v['n']}" for k, v in manifest["splits"].items())
    print(f"download: MNIST from {cfg.source}, hash-verified: {counts} -> {OUT}/")


if __name__ == "__main__":
    run_stage("download", main)
