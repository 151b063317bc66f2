"""Benchmark: measuring from a stage script whose imports stay light, against one that
imports torch, torchvision and MLflow at the top.

`measure` used to spawn its workers, and a spawned worker imported the main script again
before it measured anything; since 2026-12-02 it uses joblib's loky pool, whose workers do
not, and this benchmark shows the ratio is now about 1 (docs/benchmarks.md). Both sides here
are small scripts run as separate processes, each timing one `measure` call over the same
test digits with the same number of workers; only where the heavy imports sit differs. The
light side is how the stage scripts in `pipeline/` are written (heavy imports inside
`main()`); the heavy side is how they were written before.

    python benchmarks/bench_stage_workers.py [--images 7936] [--workers 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HEAVY = "import torch, torchvision, mlflow  # noqa: E401,F401  (at the top, as stages were)\n"
BODY = """
import sys, time

from latentsteer.domains.mnist.datasets import mnist
from latentsteer.domains.mnist.morphometry import measure

if __name__ == "__main__":
    images = mnist("test")[0][: int(sys.argv[1])]
    start = time.perf_counter()
    measure(images, workers=int(sys.argv[2]), progress=False)
    print(time.perf_counter() - start)
"""


def timed(script: Path, images: int, workers: int) -> float:
    out = subprocess.run(
        [sys.executable, str(script), str(images), str(workers)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=7936)  # 31 frames of 256 codes
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.images} images, {args.workers} workers, best of {args.repeats}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        heavy, light = Path(tmp, "heavy.py"), Path(tmp, "light.py")
        heavy.write_text(HEAVY + BODY)
        light.write_text(BODY)
        t_heavy = min(timed(heavy, args.images, args.workers) for _ in range(args.repeats))
        t_light = min(timed(light, args.images, args.workers) for _ in range(args.repeats))
        t_one = min(timed(light, args.images, 1) for _ in range(args.repeats))
    print(f"baseline: heavy imports at the top of the script  {t_heavy:6.2f} s")
    print(f"stage scripts as written: imports inside main()   {t_light:6.2f} s")
    print(f"for scale: one process, no workers                {t_one:6.2f} s")
    print(f"ratio heavy / light: {t_heavy / t_light:.2f}x")


if __name__ == "__main__":
    main()
