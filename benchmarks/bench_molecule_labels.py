"""Benchmark: the `molecules_labels` stage's measuring (worker processes, chunks) against a
plain per-molecule loop, in the same run on the same MOSES molecules.

    python benchmarks/bench_molecule_labels.py [--molecules 4000] [--workers 2]

Reads the molecules of `data/molecules/raw/train.parquet` (run `dvc repro
molecules_download` first). Both sides compute the same table (checked).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import pandas as pd

from latentsteer.domains.molecules.properties import measure_molecules, measure_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecules", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    smiles = pd.read_parquet("data/molecules/raw/train.parquet").canonical[: args.molecules]
    smiles = smiles.tolist()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{len(smiles)} molecules, {args.workers} workers")  # fmt: skip

    start = time.perf_counter()
    rows = [measure_one(s) for s in smiles]
    loop = time.perf_counter() - start

    start = time.perf_counter()
    table = measure_molecules(smiles, workers=args.workers, progress=False)
    pooled = time.perf_counter() - start

    same = pd.DataFrame(rows)[table.columns].astype(table.dtypes).equals(table)
    print(f"baseline, plain loop   : {loop:7.2f} s ({loop / len(smiles) * 1e3:.2f} ms/molecule)")
    per = pooled / len(smiles) * 1e3
    print(f"measure_molecules      : {pooled:7.2f} s ({per:.2f} ms/molecule)")
    print(f"same table: {same}; ratio loop / pooled: {loop / pooled:.2f}x")


if __name__ == "__main__":
    main()
