"""The ``latentsteer`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from latentsteer.config_flags import given
from latentsteer.errors import LatentsteerError, run_reporting


def _cmd_measure(args: argparse.Namespace) -> None:
    from latentsteer.atomic import write_table
    from latentsteer.domains.mnist.images import read_images
    from latentsteer.domains.mnist.morphometry import MorphometryConfig, measure

    out_suffix = os.path.splitext(args.out)[1].lower()
    if out_suffix not in (".csv", ".parquet"):  # fail before the slow part
        raise LatentsteerError(f"--out must end in .csv or .parquet; got {args.out!r}")
    images, names = read_images(args.input)
    cfg = MorphometryConfig(threshold=args.threshold, scale=args.scale, bound_frac=args.bound_frac)
    table = measure(images, workers=args.workers, config=cfg)
    table.insert(0, "index", range(len(table)))
    if names is not None:
        table.insert(1, "file", names)
    write_table(table, args.out)
    print(f"measured {len(table)} images -> {args.out}")


def _cmd_sample(args: argparse.Namespace) -> None:
    import math

    import torch

    from latentsteer.domains.mnist.grids import save_grid
    from latentsteer.model import load_model

    if args.n < 1:
        raise LatentsteerError(f"-n must be a positive integer; got {args.n}")
    if not args.out.lower().endswith(".png"):
        raise LatentsteerError(f"--out must end in .png; got {args.out!r}")
    model = load_model(args.model)
    cols = math.ceil(math.sqrt(args.n))
    rows = math.ceil(args.n / cols)
    with torch.no_grad():
        images = model.decode(model.sample_prior(args.n, seed=args.seed)).cpu()  # (n, 28, 28)
    blank = torch.zeros(rows * cols - args.n, 28, 28)  # fill the grid's last row
    save_grid(torch.cat([images, blank]).reshape(rows, cols, 28, 28), args.out)
    print(f"sampled {args.n} digits from the prior (seed {args.seed}) -> {args.out}")


def _cmd_steer(args: argparse.Namespace) -> None:
    from latentsteer.experiment import summary_line
    from latentsteer.request import steer

    out = Path(args.out)
    if out.exists() and not out.is_dir():  # fail before the slow part, and write nothing
        raise LatentsteerError(f"--out {args.out} is an existing file; give a folder")
    outcome = steer(
        args.goal, args.start, model=args.model, judge=args.judge,
        certifier=None if args.certifier.lower() == "none" else args.certifier,
        data=args.data, labels=args.labels, out=out, device=args.device,
        workers=args.workers, **given(args, args.config_fields),
    )  # fmt: skip
    print(f"steered {', '.join(args.goal)}: {summary_line(outcome.metrics)} -> {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentsteer",
        description="Latent-space steering of a multi-head VAE on MNIST, oracle-verified.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser(
        "measure",
        help="Morpho-MNIST measures of your own images",
        description="Measure area, length, thickness, slant, width and height of each image "
        "(one row per image, in input order).",
    )
    m.add_argument("input", help=".npy/.npz array (n, H, W) or a folder of PNGs")
    m.add_argument("--out", required=True, help="output table, .csv or .parquet")
    m.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    m.add_argument("--threshold", type=float, default=0.5, help="relative binarisation level")
    m.add_argument("--scale", type=int, default=4, help="upscaling factor")
    m.add_argument("--bound-frac", type=float, default=0.02, help="mass dropped by the box")
    m.set_defaults(func=_cmd_measure)

    s = sub.add_parser("sample", help="decode prior draws of a trained model into a PNG grid")
    s.add_argument("--model", default="models/vae", help="model folder (default: models/vae)")
    s.add_argument("-n", type=int, default=64, help="number of samples")
    s.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    s.add_argument("--out", required=True, help="output .png")
    s.set_defaults(func=_cmd_sample)

    from latentsteer.config_flags import add_config_flags
    from latentsteer.domains.mnist.starts import SPEC_HELP
    from latentsteer.experiment import ExperimentConfig
    from latentsteer.goalspec import SYNTAX

    t = sub.add_parser(
        "steer",
        help="steer codes towards goals and verify the results with the oracles",
        description="Run one steering experiment outside the pipeline. Writes trajectory.npz, "
        "grid.png, curves.png and metrics.json to --out, as the optimize stages do. The oracles "
        "measure with the Morpho-MNIST settings the model folder records (the calibrate stage "
        "writes the labels stage's threshold, scale, bound_frac and chunk_size into its "
        "config.json: the definition the heads were fitted to); a folder that records none is "
        "measured with the defaults (threshold 0.5, scale 4, bound_frac 0.02, chunk_size 128).",
    )
    t.add_argument("--goal", action="append", required=True,
                   help=f"a goal, repeatable ({SYNTAX})")  # fmt: skip
    t.add_argument("--start", default="random:256", help=f"where to start: {SPEC_HELP}")
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument(
        "--model", default="models/vae_calibrated", help="VAE folder (as the optimize stages)"
    )
    t.add_argument("--judge", default="models/judge",
                   help="guide judge, read inside the loop (default: models/judge)")  # fmt: skip
    t.add_argument("--data", default="data/raw", help="MNIST folder for test: starts and realism")
    t.add_argument("--labels", default="data/labels", help="label tables (realism reference)")
    t.add_argument(
        "--certifier", default="models/certifier",
        help="judge the loop never sees, which grades the results (default: models/certifier; "
        "none grades with --judge, and the metrics say so)",
    )  # fmt: skip
    # Every other setting of an experiment entry, generated from ExperimentConfig.
    t.set_defaults(config_fields=add_config_flags(t, ExperimentConfig, skip=("goals", "start")))
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--workers", type=int, default=None, help="processes for the measures")
    t.set_defaults(func=_cmd_steer)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (errors print one line to stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_reporting(f"latentsteer {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
