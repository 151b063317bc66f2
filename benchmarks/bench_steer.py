"""Benchmark: batched latent steering against a per-sample loop, same objective and steps.

The batched path is `latentsteer.ascent.ascend`: all n codes move together in one tensor
program, and it also records the path and the predictions at every step. The per-sample
loop is the straightforward method: one code at a time, `backward()`, optimiser step. Both
maximise the same objective (thickness +1.5 with the digit kept, prior penalty 0.05) for
the same number of steps, with early stopping off so both do the same work.

`guided` times the defaults of an experiment entry that gives only `thickness=max` and
`digit=keep` (the closed loop, its own step budget and stop rules), steered exactly as the
stages steer (`latentsteer.runner.steer_start`), without the grading that follows: batched,
the in-loop oracles read every moving sample in one call per check; per sample, the same
steering runs one sample at a time. Each sample makes the same decisions either way. The
batch is also timed reading every row at every step, as the ascent did before it skipped the
samples that had stopped (the baseline of that change, in the same run).

`penalty` times the same guided batch twice: the guide judge's penalty on kept digits
(`keep_weight`) computed for the moving samples only (the default), and for every row at every
step (the baseline of that change, in the same run).

`cli` times what a new user runs, as a whole process: `latentsteer steer --model M --start
random:n --goal thickness=max --goal digit=keep --out DIR` (defaults: the closed loop, the
certifier's grading, the files written), against the seed's own method in the same run:
the thickness head read on z, Adam for 100 steps at lr 0.05, one code at a time.

The per-sample loops run on the first `--loop-samples` codes and their time is scaled to n
(the samples are independent, so their cost is linear in n); `--loop-samples 0` runs all n.

    python benchmarks/bench_steer.py [--n 1000] [--steps 100] [--loop-samples 50]
        [--paths code,mixed,guided,penalty,cli]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest.mock import patch

import torch

from latentsteer import ascent
from latentsteer.ascent import StopRule, ascend
from latentsteer.context import Context
from latentsteer.domain import Start
from latentsteer.domains.mnist.domain import MNIST, default_heads
from latentsteer.domains.mnist.steering_context import load_context
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.guide import Guide
from latentsteer.loading import load_model
from latentsteer.model import ModelConfig, MultiHeadVAE
from latentsteer.objectives import Increase, Keep, combine
from latentsteer.optimize_config import OptimizeConfig
from latentsteer.readout import readout
from latentsteer.runner import steer_start
from latentsteer.safeguards import PriorPenalty

GOALS = [Increase("thickness", 1.5), Keep("digit")]
PRIOR = 0.05


def batched(model: MultiHeadVAE, z0: torch.Tensor, steps: int, kind: str) -> float:
    start = time.perf_counter()
    ascend(
        model, z0, GOALS, steps=steps, lr=0.05, safeguards=[PriorPenalty(PRIOR)],
        stop=StopRule(when_satisfied=False, grad_tol=None), readout=kind,  # type: ignore[arg-type]
    )  # fmt: skip
    return time.perf_counter() - start


def per_sample(model: MultiHeadVAE, z0: torch.Tensor, steps: int, kind: str) -> float:
    read = readout(model, kind)  # type: ignore[arg-type]
    start = time.perf_counter()
    for i in range(len(z0)):
        z = z0[i : i + 1].clone().requires_grad_(True)
        objective = combine([g.bind(model, z.detach(), read) for g in GOALS])
        opt = torch.optim.Adam([z], lr=0.05)
        for _ in range(steps):
            opt.zero_grad()
            loss = -(objective(read(z)) - PRIOR * 0.5 * z.pow(2).sum(1)).sum()
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def seed_loop(model: MultiHeadVAE, z0: torch.Tensor) -> float:
    """The seed's method on the codes ``z0 (m, d)``, one at a time; returns seconds."""
    start = time.perf_counter()
    for i in range(len(z0)):
        z = z0[i : i + 1].clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=0.05)
        for _ in range(100):
            opt.zero_grad()
            (-model.predict(z)["thickness"].sum()).backward()
            opt.step()
    return time.perf_counter() - start


def cli(model_dir: str, n: int) -> float:
    """``latentsteer steer`` at its defaults on ``n`` prior draws, as a whole process."""
    exe = shutil.which("latentsteer") or sys.exit("the latentsteer command is not installed")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([exe, "steer", "--model", model_dir, "--start", f"random:{n}",
                        "--goal", "thickness=max", "--goal", "digit=keep", "--out",
                        f"{out}/run"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        return time.perf_counter() - start


def guided(ctx: Context, z0: torch.Tensor) -> float:
    """The closed-loop defaults (an experiment entry giving only ``thickness=max`` and
    ``digit=keep``), steered from ``z0 (n, d)`` as the stages steer, without the grading
    afterwards; returns seconds."""
    cfg = ExperimentConfig(goals=["thickness=max", "digit=keep"], start=f"random:{len(z0)}")
    start = time.perf_counter()
    steer_start(cfg, ctx, Start(z0, None, None, cfg.start))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--loop-samples", type=int, default=50)
    parser.add_argument("--model", default="models/vae_calibrated")
    parser.add_argument("--judge", default="models/judge")
    parser.add_argument("--data", default="data/raw", help="MNIST (for the guided row)")
    parser.add_argument("--labels", default="data/labels", help="labels (guided row)")
    parser.add_argument("--paths", default="code,mixed,guided", help="which rows to time")
    args = parser.parse_args()
    if Path(args.model).is_dir():
        model = load_model(args.model)
    else:  # timing does not depend on the weights
        torch.manual_seed(0)
        model = MultiHeadVAE(ModelConfig(heads=default_heads()), MNIST)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)  # both paths differentiate with respect to the codes only
    z0 = model.sample_prior(args.n, seed=0)
    m = args.loop_samples or args.n
    print(f"threads {torch.get_num_threads()}, n {args.n}, steps {args.steps}, "
          f"per-sample loop timed on {m} codes and scaled to {args.n}")  # fmt: skip
    paths = args.paths.split(",")
    if "cli" in paths:
        t_cli = cli(args.model, args.n)
        t_seed = seed_loop(model, z0[:m]) * args.n / m
        print(f"cli (defaults, whole process): {t_cli:7.2f} s; the seed's per-sample loop "
              f"{t_seed:8.1f} s -> {t_seed / t_cli:6.2f}x", flush=True)  # fmt: skip
    for kind in [k for k in ("code", "mixed") if k in paths]:
        t_batch = batched(model, z0, args.steps, kind)
        t_loop = per_sample(model, z0[:m], args.steps, kind) * args.n / m
        print(f"readout {kind:5s}: batched {t_batch:7.2f} s, per-sample {t_loop:8.1f} s "
              f"-> {t_loop / t_batch:6.1f}x")  # fmt: skip
    if "guided" not in paths and "penalty" not in paths:
        return
    # The pipeline's in-loop oracle (judge and measures) and kNN codes; no realism reference
    # is read while steering.
    ctx = load_context(args.model, args.judge, args.data, args.labels,
                       OptimizeConfig(reference=2, knn_codes=1000))  # fmt: skip
    if "penalty" in paths:
        t_moving = guided(ctx, z0)
        every_row = Guide.penalty
        with patch.object(Guide, "penalty", lambda self, z, live=None: every_row(self, z)):
            t_all = guided(ctx, z0)
        print(f"guided (defaults): judge penalty on moving rows {t_moving:7.2f} s, on every "
              f"row {t_all:7.2f} s -> {t_all / t_moving:4.2f}x", flush=True)  # fmt: skip
    if "guided" not in paths:
        return
    t_batch = guided(ctx, z0)
    # The same batch as before the readout skipped stopped samples: every row read each step.
    with patch.object(ascent, "read_live", lambda read, z, live, last: read(z)):
        t_every = guided(ctx, z0)
    print(f"guided (defaults): batched {t_batch:7.2f} s; reading every row at every step "
          f"{t_every:7.2f} s -> moving rows only is {t_every / t_batch:4.2f}x faster",
          flush=True)  # fmt: skip
    t_loop = sum(guided(ctx, z0[i : i + 1]) for i in range(m)) * args.n / m
    print(f"guided (defaults): batched {t_batch:7.2f} s, per-sample {t_loop:8.1f} s "
          f"-> {t_loop / t_batch:6.1f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
