"""Benchmark: training throughput of `latentsteer.train.fit` against a bare loop.

Both train the same MultiHeadVAE (default params) on the same in-memory images for the same
number of steps, in this run. The bare loop is forward, loss, backward, step and nothing
else. `fit` adds what the `train` stage pays for: batching from a seeded permutation, loss
bookkeeping, a per-epoch validation pass, an epoch checkpoint and MLflow metric logging to
a SQLite store. The ratio is fit / bare throughput.

    python benchmarks/bench_train.py [--images 10000] [--val 1000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from latentsteer import tracking
from latentsteer.domains.mnist.datasets import mnist
from latentsteer.domains.mnist.domain import MNIST, default_heads
from latentsteer.model import ModelConfig, MultiHeadVAE
from latentsteer.train import Dataset, TrainConfig, fit, losses


def dataset(n: int, split: str) -> Dataset:
    x, y = mnist(split)
    x = torch.as_tensor(x[:n])
    # Head targets only need the right types here; their values do not change the cost.
    reg = x.sum(dim=(1, 2)) / 100
    targets = {h.name: (torch.as_tensor(y[:n]) if h.kind == "class" else reg)
               for h in default_heads()}  # fmt: skip
    return Dataset(x, targets)


def new_model(train: Dataset) -> MultiHeadVAE:
    torch.manual_seed(0)
    model = MultiHeadVAE(ModelConfig(heads=default_heads()), MNIST)
    model.set_target_scaling(train.targets)
    return model


def bare_loop(train: Dataset, cfg: TrainConfig) -> float:
    model = new_model(train)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(train)).split(cfg.batch_size):
            x = train.images[idx]
            t = {k: v[idx] for k, v in train.targets.items()}
            loss = losses(model, model(x), x, t, cfg.beta)["total"]
            optim.zero_grad()
            loss.backward()
            optim.step()
    return cfg.epochs * len(train) / (time.perf_counter() - start)


def tracked_fit(train: Dataset, val: Dataset, cfg: TrainConfig, work: Path) -> float:
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    model = new_model(train)
    with tracking.start_run("bench", stage="benchmark", domain="mnist") as run:
        start = time.perf_counter()
        fit(model, train, val, cfg, checkpoint=work / "last.pt",
            on_epoch=lambda e, m: run.log_metrics(m, step=e), progress=False)  # fmt: skip
        seconds = time.perf_counter() - start
    return cfg.epochs * len(train) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--val", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    train, val = dataset(args.images, "train"), dataset(args.val, "val")
    cfg = TrainConfig(epochs=args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        tracked_fit(train, val, TrainConfig(epochs=1), Path(tmp))  # warm-up: DB creation, JIT
        bare = bare_loop(train, cfg)
        full = tracked_fit(train, val, cfg, Path(tmp))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"bare loop          : {bare:8.0f} images/s")
    print(f"fit + tracking     : {full:8.0f} images/s")
    print(f"ratio fit / bare   : {full / bare:.3f}  (overhead {100 * (1 - full / bare):.1f}%)")


if __name__ == "__main__":
    main()
