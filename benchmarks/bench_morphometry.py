"""Benchmark: the Morpho-MNIST measures, every implementation side by side in one run.

1. The `labels` stage's workload: `measure` (scikit-image's medial axis on mosaics, worker
   processes) against the straightforward per-image implementation (`morpho_reference.
   measure_one` mapped over a process pool, as Morpho-MNIST's `measure_batch` does), with
   the same number of workers; the baseline on a sample (all 70 000 take about 13 minutes
   on 2 cores), `measure` on the same sample and on all 70 000 images, and the tensor path
   (`measure_tensors`, as many threads as workers) on all 70 000 too.
2. The in-loop oracle's workload: batches of `--batch` images (256 by default) measured in
   this process, as the closed loop's checks measure the moving samples. `measure` (all six
   measures, the oracle's implementation before the tensor path) against `measure_tensors`
   (the tensor path, on the CPU here) for thickness alone (what `thickness=max` needs) and
   for all six, on real digits (uint8) and on decoder-like soft digits (floats).

    python benchmarks/bench_morphometry.py [--baseline-images 2000] [--workers 2]
        [--batch 256] [--repeats 3] [--skip-labels]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import time

import numpy as np
import torch
from scipy import ndimage

from latentsteer.domains.mnist.datasets import SPLITS, mnist
from latentsteer.domains.mnist.morpho_reference import measure_one
from latentsteer.domains.mnist.morphometry import measure
from latentsteer.domains.mnist.tensor_measures import measure_tensors


def all_images() -> np.ndarray:
    return np.concatenate([np.rint(mnist(s)[0] * 255).astype(np.uint8) for s in SPLITS])


def best_of(repeats: int, run) -> float:  # noqa: ANN001
    """Fastest of ``repeats`` timed calls, in seconds (after one untimed warm-up)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def in_loop_batches(images: np.ndarray, batch: int, repeats: int) -> None:
    """Section 2: one batch measured in this process by each implementation."""
    rng = np.random.default_rng(1)
    real = images[np.sort(rng.choice(len(images), batch, replace=False))]
    soft = np.clip(ndimage.gaussian_filter(real / 255.0, sigma=(0, 0.8, 0.8)), 0.0, 1.0)
    for name, x in (("real digits, uint8", real), ("soft digits, float", soft)):
        today = best_of(repeats, lambda x=x: measure(x, workers=1, progress=False))
        thick = best_of(repeats, lambda x=x: measure_tensors(x, ["thickness"]))
        six = best_of(repeats, lambda x=x: measure_tensors(x))
        per = 1e3 / len(x)
        print(
            f"batch {len(x)}, {name}: measure (all six) {today * per:.3f} ms/image; "
            f"tensors, thickness {thick * per:.3f} ms/image -> {today / thick:.2f}x; "
            f"tensors, all six {six * per:.3f} ms/image -> {today / six:.2f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-labels", action="store_true", help="section 2 only")
    args = parser.parse_args()

    images = all_images()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"workers: {args.workers}; torch threads: {torch.get_num_threads()}"
    )
    in_loop_batches(images, args.batch, args.repeats)
    if args.skip_labels:
        return
    rng = np.random.default_rng(0)
    sample = images[np.sort(rng.choice(len(images), args.baseline_images, replace=False))]

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

    start = time.perf_counter()
    measure_tensors(images, threads=args.workers)
    tensors_full = time.perf_counter() - start

    print(f"baseline per-image pool : {base * 1e3:7.3f} ms/image wall ({len(sample)} images)")
    print(f"measure, same sample    : {fast_sample * 1e3:7.3f} ms/image wall")
    total = f"{full:.1f} s total"
    print(f"measure, all {len(images)}   : {fast_full * 1e3:7.3f} ms/image wall, {total}")
    print(f"baseline projected to {len(images)}: {base * len(images):.0f} s")
    print(f"speed-up on the same sample: {base / fast_sample:.1f}x")
    print(f"speed-up, full labels workload vs baseline rate: {base / fast_full:.1f}x")
    print(f"measure_tensors, all {len(images)}: {tensors_full:.1f} s total "
          f"-> measure is {tensors_full / full:.2f}x faster on the labels workload")  # fmt: skip


if __name__ == "__main__":
    main()
