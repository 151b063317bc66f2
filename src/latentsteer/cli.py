"""The ``latentsteer`` command line."""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from latentsteer.config_flags import given
from latentsteer.errors import LatentsteerError, run_reporting

if TYPE_CHECKING:
    from latentsteer.domain import Domain


def _known_domains() -> dict[str, Domain]:
    """Every known domain by name (the help texts list what each one takes)."""
    from latentsteer.registry import get_domain, names

    return {name: get_domain(name) for name in names()}


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


def _cmd_fit_property(args: argparse.Namespace) -> None:
    from latentsteer.learned.fit import fit_property

    fit = fit_property(
        args.model, args.table, args.column, args.out, name=args.name, seed=args.seed,
        tolerance=args.tolerance, device=args.device,
    )  # fmt: skip
    print(fit.summary())


def _cmd_steer(args: argparse.Namespace) -> None:
    from latentsteer.atomic import check_writable
    from latentsteer.registry import domain_of
    from latentsteer.request import steer
    from latentsteer.results import summary_line

    out = Path(args.out)
    check_writable(out)  # an existing file, or a folder we cannot write: fail before the work
    domain = domain_of(args.model)
    settings = given(args, args.config_fields)
    if args.bound:
        settings["bounds"] = dict(parse_bound(b) for b in args.bound)
    sources = {}
    for name in domain.sources:  # the flags given; "none" switches a source off
        value = getattr(args, f"source_{name}", None)
        if value is not None:
            sources[name] = None if value.lower() == "none" else value
    outcome = steer(
        args.goal, args.start, model=args.model, out=out, device=args.device,
        workers=args.workers, **sources, **settings,
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
    from latentsteer.registry import DEFAULT

    # What each known domain reads, writes and takes, for the help texts.
    domains = _known_domains()
    read_by = "; ".join(f"{', '.join(d.file_suffixes)} → {name}"
                        for name, d in domains.items() if d.file_suffixes)  # fmt: skip
    suffixes = ", ".join(dict.fromkeys(x for d in domains.values() for x in d.file_suffixes))
    written = "; ".join(f"{name}: {' or '.join(d.sample_suffixes)}"
                        for name, d in domains.items())  # fmt: skip
    starts = "; ".join(f"{name}: {d.start_help}" for name, d in domains.items())
    tables = "; ".join(f"{name}: {d.table_help}" for name, d in domains.items() if d.table_help)

    m = sub.add_parser(
        "measure",
        help="the domain's oracle measures of your own samples",
        description="Measure each sample of a file with the domain's oracle, one row per "
        "sample in input order. A sample the domain cannot measure (a line that does not "
        "parse) keeps its row, marked, and is named on stderr.",
    )
    m.add_argument(
        "--domain", default=None,
        help=f"the kind of data: {', '.join(domains)} (default: from the file: {read_by}; "
        f"else {DEFAULT})",
    )  # fmt: skip
    m.add_argument("input", help=f"a file of samples ({suffixes}), or a folder of PNGs")
    m.add_argument("--out", required=True, help="output table, .csv or .parquet")
    m.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    # Options of image measures (the domain validates them; others ignore them).
    m.add_argument("--threshold", type=float, default=0.5, help="images: binarisation level")
    m.add_argument("--scale", type=int, default=4, help="images: upscaling factor")
    m.add_argument("--bound-frac", type=float, default=0.02, help="images: mass the box drops")
    m.set_defaults(func=_cmd_measure)

    s = sub.add_parser(
        "sample",
        help=f"decode prior draws of a trained model into a file of its domain ({written})",
    )
    s.add_argument("--model", default="models/vae", help="model folder (default: models/vae)")
    s.add_argument("-n", type=int, default=64, help="number of samples")
    s.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    s.add_argument("--out", required=True, help=f"output file, by the model's domain ({written})")
    s.set_defaults(func=_cmd_sample)

    from latentsteer.config_flags import add_config_flags
    from latentsteer.experiment_config import ExperimentConfig
    from latentsteer.goalspec import SYNTAX

    t = sub.add_parser(
        "steer",
        help="steer codes towards goals and verify the results with the oracles",
        description="Run one steering experiment outside the pipeline. Writes trajectory.npz, "
        "grid.png, curves.png and metrics.json to --out, as the optimize stages do (a domain "
        "whose context proposes its own samples writes its own table). The model folder names "
        "its domain, "
        "which reads starts and supplies the oracles. The oracles measure with the settings "
        "the model folder records (the calibrate stage writes the labels stage's settings "
        "into its config.json: the definition the heads were fitted to); a folder that "
        "records none is measured with the domain's defaults.",
    )
    t.add_argument("--goal", action="append", required=True,
                   help=f"a goal, repeatable ({SYNTAX})")  # fmt: skip
    t.add_argument(
        "--start",
        default="random:256",
        help=f"where to start, as the model's domain reads it ({starts})",
    )
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument(
        "--model", default="models/vae_calibrated", help="VAE folder (as the optimize stages)"
    )
    _add_source_flags(t)
    # Every other setting of an experiment entry, generated from ExperimentConfig, with the
    # domains' own defaults in the help; --method takes any known domain's methods (the
    # model's domain checks its own, as it checks which settings its models take).
    fields = add_config_flags(
        t, ExperimentConfig, skip=("goals", "start", "method", "bounds", "proposer"),
        domain_defaults={name: d.experiment_defaults for name, d in domains.items()},
    )  # fmt: skip
    t.set_defaults(config_fields=[*fields, "method"])
    _add_method_flag(t)
    t.add_argument(
        "--bound",
        action="append",
        default=[],
        help="a range a result's property must lie in, repeatable: prop=LO:HI, prop=LO: or "
        "prop=:HI (domains that take bounds)",
    )
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--workers", type=int, default=None, help="processes for the measures")
    t.set_defaults(func=_cmd_steer)

    f = sub.add_parser(
        "fit-property",
        help="your own property from a table: a head, a learned oracle, a new model folder",
        description="Fit a property measured on your own samples onto a trained model: a head "
        "on the code (held-out R² and MAE), an independent learned oracle in data space of "
        "other model families (5-fold cross-validated error, applicability domain, "
        "tolerance), written with the model to --out. The property is then a goal of "
        f"`latentsteer steer --model OUT`. Tables, by the model's domain: {tables}.",
    )
    f.add_argument("--model", required=True, help="the trained model folder")
    f.add_argument("--table", required=True, help="samples and measured values")
    f.add_argument("--column", required=True, help="the property's column (array) in --table")
    f.add_argument("--name", default=None, help="the property's goal name (default: --column)")
    f.add_argument("--out", required=True, help="the new model folder")
    f.add_argument("--tolerance", type=float, default=None,
                   help="what counts as reached, in the property's units (default: the "
                   "learned oracle's cross-validated MAE)")  # fmt: skip
    f.add_argument("--seed", type=int, default=0, help="split, folds and initial weights")
    f.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    f.set_defaults(func=_cmd_fit_property)
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
