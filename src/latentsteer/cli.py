"""The ``latentsteer`` command line."""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from latentsteer.config_flags import given
from latentsteer.errors import LatentsteerError, run_reporting


def _cmd_measure(args: argparse.Namespace) -> None:
    from latentsteer.atomic import write_table
    from latentsteer.registry import domain_for_file, get_domain

    out_suffix = os.path.splitext(args.out)[1].lower()
    if out_suffix not in (".csv", ".parquet"):  # fail before the slow part
        raise LatentsteerError(f"--out must end in .csv or .parquet; got {args.out!r}")
    domain = get_domain(args.domain) if args.domain else domain_for_file(args.input)
    options = {"threshold": args.threshold, "scale": args.scale, "bound_frac": args.bound_frac}
    table = domain.measure_file(args.input, workers=args.workers, options=options)
    problems = table.attrs.pop("problems", "")
    write_table(table, args.out)
    print(f"measured {len(table)} samples -> {args.out}")
    if problems:  # rows kept and marked; the user hears which
        print(f"warning: {problems}", file=sys.stderr)


def _cmd_sample(args: argparse.Namespace) -> None:
    import torch

    from latentsteer.atomic import atomic_file
    from latentsteer.loading import load_model

    if args.n < 1:
        raise LatentsteerError(f"-n must be a positive integer; got {args.n}")
    out = Path(args.out)
    if out.is_dir():
        raise LatentsteerError(f"--out {args.out} is a folder; give a file name")
    model = load_model(args.model)
    suffixes = model.domain.sample_suffixes
    if out.suffix.lower() not in suffixes:
        raise LatentsteerError(
            f"--out must end in {' or '.join(suffixes)} for a {model.domain.name} model; "
            f"got {args.out!r}"
        )
    with torch.no_grad():
        samples = model.decode(model.sample_prior(args.n, seed=args.seed)).cpu()  # (n, ...)
    with atomic_file(out) as tmp:
        model.domain.write_samples(samples, tmp)
    print(f"sampled {args.n} from the prior of a {model.domain.name} model (seed {args.seed}) "
          f"-> {args.out}")  # fmt: skip


def _cmd_steer(args: argparse.Namespace) -> None:
    from latentsteer.atomic import check_writable
    from latentsteer.registry import domain_of
    from latentsteer.request import steer
    from latentsteer.results import summary_line

    out = Path(args.out)
    check_writable(out)  # an existing file, or a folder we cannot write: fail before the work
    domain = domain_of(args.model)
    method = getattr(args, "method", None)
    if method is not None and method not in domain.methods:  # the parser took any domain's
        raise LatentsteerError(f"--method {method}: not a method of {domain.name} models; "
                               f"theirs: {', '.join(domain.methods)}")  # fmt: skip
    if domain.steerer is not None:  # molecules: settings of their own
        _steer_own(args, domain.name, out)
        return
    if args.similarity is not None or args.bound or args.budget is not None:
        raise LatentsteerError(f"--similarity, --bound and --budget apply to molecule models; "
                               f"{args.model} is {domain.name} (--model-budget caps model "
                               "calls)")  # fmt: skip
    sources = {}
    for name in domain.sources:  # the flags given; "none" switches a source off
        value = getattr(args, f"source_{name}", None)
        if value is not None:
            sources[name] = None if value.lower() == "none" else value
    outcome = steer(
        args.goal, args.start, model=args.model, out=out, device=args.device,
        workers=args.workers, **sources, **given(args, args.config_fields),
    )  # fmt: skip
    print(f"steered {', '.join(args.goal)}: {summary_line(outcome.metrics)} -> {args.out}")


def parse_bound(text: str) -> tuple[str, list[float | None]]:
    """``logp=1:3``, ``qed=0.9:`` or ``sa=:3`` → ``(property, [lo, hi])``.

    Raises:
        ValueError: anything else (one line).
    """
    m = re.fullmatch(r"\s*(\w+)\s*=\s*([^:]*):([^:]*)\s*", text)
    if m is None:
        raise ValueError(f"bad bound {text!r}; accepted: prop=LO:HI, prop=LO: or prop=:HI")
    try:
        lo, hi = (float(v) if v.strip() else None for v in m.group(2, 3))
    except ValueError:
        raise ValueError(f"bad bound {text!r}: LO and HI must be numbers") from None
    return m.group(1), [lo, hi]


#: Flags of `latentsteer steer` a molecule model takes besides --goal, --start and --out.
MOLECULE_FLAGS = ("method", "guide", "seed", "steps", "lr", "population", "sigma")


def _steer_own(args: argparse.Namespace, domain: str, out: Path) -> None:
    """``latentsteer steer`` on a model whose domain steers its own way (molecules)."""
    from latentsteer.request import steer

    settings = given(args, args.config_fields)
    other = sorted(set(settings) - set(MOLECULE_FLAGS))
    if other:
        flags = ", ".join("--" + k.replace("_", "-") for k in other)
        raise LatentsteerError(f"{flags}: not used by {domain} models; their settings: "
                               f"--similarity, --bound, --budget, "
                               f"{', '.join('--' + k for k in MOLECULE_FLAGS)}")  # fmt: skip
    if args.similarity is not None:
        settings["similarity"] = args.similarity
    if args.budget is not None:
        settings["budget"] = args.budget
    if args.bound:
        settings["bounds"] = dict(parse_bound(b) for b in args.bound)
    if getattr(args, "source_labels", None) is not None:  # the training molecules' labels
        settings["labels"] = args.source_labels
    outcome = steer(args.goal, args.start, model=args.model, out=out, device=args.device,
                    workers=args.workers, **settings)  # fmt: skip
    m = outcome.metrics
    print(f"steered {len(outcome.table)} molecules ({m['task']}): RDKit confirms "
          f"{m['success_rate']:.0%} ({m['oracle_calls']:.0f} RDKit calls a start on average) "
          f"-> {args.out}/molecules.csv")  # fmt: skip


def _add_source_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per source a known domain's context reads (``--judge``, ``--data``, ...)."""
    from latentsteer.registry import get_domain, names

    seen: dict[str, list[str]] = {}
    for name in names():
        for key, default in get_domain(name).sources.items():
            seen.setdefault(key, []).append(f"{name}: {default}")
    for key, defaults in seen.items():
        parser.add_argument(
            f"--{key}", dest=f"source_{key}", default=None,
            help=f"the domain's {key} (default {'; '.join(defaults)}; none: off)",
        )  # fmt: skip


def _add_method_flag(parser: argparse.ArgumentParser) -> None:
    """``--method``, whose choices are every known domain's steering methods."""
    from latentsteer.registry import get_domain, names

    by_domain = {name: get_domain(name).methods for name in names()}
    choices = list(dict.fromkeys(m for methods in by_domain.values() for m in methods))
    listed = "; ".join(f"{name}: {', '.join(m)}" for name, m in by_domain.items())
    default = "; ".join(f"{name}: {m[0]}" for name, m in by_domain.items())
    parser.add_argument("--method", choices=choices, default=argparse.SUPPRESS, dest="method",
                        help=f"how to steer ({listed}; default {default})")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentsteer",
        description="Latent-space steering of a multi-head VAE, oracle-verified.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser(
        "measure",
        help="the domain's oracle measures of your own samples (MNIST: Morpho-MNIST; "
        "molecules: RDKit)",
        description="Measure each sample of a file with the domain's oracle, one row per "
        "sample in input order. MNIST: area, length, thickness, slant, width and height of "
        "each image of a .npy/.npz array or a folder of PNGs. Molecules: validity, canonical "
        "SMILES, SELFIES, QED, logP, SA, penalized logP, weight, TPSA, rings and heavy atoms "
        "of each line of a .smi file; a line that does not parse keeps its row with "
        "valid = false and is named on stderr.",
    )
    m.add_argument(
        "--domain", default=None,
        help="the kind of data (default: from the file: .smi → molecules, else mnist)",
    )  # fmt: skip
    m.add_argument("input", help=".npy/.npz array (n, H, W), a folder of PNGs, or a .smi file")
    m.add_argument("--out", required=True, help="output table, .csv or .parquet")
    m.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    # Options of MNIST's measures (the domain validates them; others ignore them).
    m.add_argument("--threshold", type=float, default=0.5, help="MNIST: binarisation level")
    m.add_argument("--scale", type=int, default=4, help="MNIST: upscaling factor")
    m.add_argument("--bound-frac", type=float, default=0.02, help="MNIST: mass the box drops")
    m.set_defaults(func=_cmd_measure)

    s = sub.add_parser(
        "sample",
        help="decode prior draws of a trained model: a PNG grid, or (molecules) a .smi file",
    )
    s.add_argument("--model", default="models/vae", help="model folder (default: models/vae)")
    s.add_argument("-n", type=int, default=64, help="number of samples")
    s.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    s.add_argument("--out", required=True, help="output .png, or .smi for a molecule model")
    s.set_defaults(func=_cmd_sample)

    from latentsteer.config_flags import add_config_flags
    from latentsteer.experiment_config import ExperimentConfig
    from latentsteer.goalspec import SYNTAX

    t = sub.add_parser(
        "steer",
        help="steer codes towards goals and verify the results with the oracles",
        description="Run one steering experiment outside the pipeline. Writes trajectory.npz, "
        "grid.png, curves.png and metrics.json to --out, as the optimize stages do. The model "
        "folder names its domain, which reads starts and supplies the oracles. MNIST's oracles "
        "measure with the Morpho-MNIST settings the model folder records (the calibrate stage "
        "writes the labels stage's threshold, scale, bound_frac and chunk_size into its "
        "config.json: the definition the heads were fitted to); a folder that records none is "
        "measured with the defaults (threshold 0.5, scale 4, bound_frac 0.02, chunk_size 128).",
    )
    t.add_argument("--goal", action="append", required=True,
                   help=f"a goal, repeatable ({SYNTAX})")  # fmt: skip
    t.add_argument("--start", default="random:256",
                   help="where to start: random:N, or what the model's domain reads "
                   "(MNIST: test:A-B, or a .npy/.npz array or a PNG folder; molecules: a "
                   ".smi file)")  # fmt: skip
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument(
        "--model", default="models/vae_calibrated", help="VAE folder (as the optimize stages)"
    )
    _add_source_flags(t)
    # Every other setting of an experiment entry, generated from ExperimentConfig; --method
    # takes any known domain's methods (the model's domain checks its own).
    fields = add_config_flags(t, ExperimentConfig, skip=("goals", "start", "method"))
    t.set_defaults(config_fields=[*fields, "method"])
    _add_method_flag(t)
    t.add_argument(
        "--similarity",
        type=float,
        default=None,
        help="molecules: the least Tanimoto similarity of a result to its start (default 0.4)",
    )
    t.add_argument(
        "--budget",
        type=int,
        default=None,
        help="molecules: oracle (RDKit) calls per start, for every method (default 100)",
    )
    t.add_argument(
        "--bound",
        action="append",
        default=[],
        help="molecules: a range a result must lie in, repeatable: prop=LO:HI, prop=LO: or "
        "prop=:HI",
    )
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--workers", type=int, default=None, help="processes for the measures")
    t.set_defaults(func=_cmd_steer)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code.

    User errors print one line to stderr and return 1; bugs raise with their traceback (the
    rule is in :mod:`latentsteer.errors`).
    """
    # GPyTorch (under the Bayesian-optimisation baselines) uses torch.jit.script at import,
    # which this torch deprecates: a note for its maintainers, not for someone steering.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated",
                            category=FutureWarning)  # fmt: skip
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_reporting(f"latentsteer {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
