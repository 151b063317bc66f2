"""Benchmark: batched `measure` against the straightforward per-image implementation.

Both run in this process's run, on this machine, with the same number of worker processes:
the baseline maps `morpho_reference.measure_one` (MNIST domain) over images with a
process pool (as Morpho-MNIST's `measure_batch` does); the fast path is `latentsteer.measure`,
the code the
`labels` stage runs. The baseline is timed on a sample (a full run takes about 13 minutes on
2 cores); the fast path on the same sample and on all 70 000 images.

    python benchmarks/bench_morphometry.py [--baseline-images 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import time

import numpy as np

from latentsteer.domains.mnist.datasets import SPLITS, mnist
from latentsteer.domains.mnist.morpho_reference import measure_one
from latentsteer.domains.mnist.morphometry import measure


def all_images() -> np.ndarray:
    return np.concatenate([np.rint(mnist(s)[0] * 255).astype(np.uint8) for s in SPLITS])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    images = all_images()
    rng = np.random.default_rng(0)
    sample = images[np.sort(rng.choice(len(images), args.baseline_images, replace=False))]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"workers: {args.workers}"
    )

    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        pool.map(measure_one, sample, chunksize=50)
    base = (time.perf_counter() - start) / len(sample)

    start = time.perf_counter()
    measure(sample, workers=args.workers, progress=False)
    fast_sample = (time.perf_counter() - start) / len(sample)

    start = time.perf_counter()
    measure(images, workers=args.workers, progress=False)
    full = time.perf_counter() - start
    fast_full = full / len(images)

    print(f"baseline per-image pool : {base * 1e3:7.3f} ms/image wall ({len(sample)} images)")
    print(f"measure, same sample    : {fast_sample * 1e3:7.3f} ms/image wall")
    total = f"{full:.1f} s total"
    print(f"measure, all {len(images)}   : {fast_full * 1e3:7.3f} ms/image wall, {total}")
    print(f"baseline projected to {len(images)}: {base * len(images):.0f} s")
    print(f"speed-up on the same sample: {base / fast_sample:.1f}x")
    print(f"speed-up, full labels workload vs baseline rate: {base / fast_full:.1f}x")


if __name__ == "__main__":
    main()
