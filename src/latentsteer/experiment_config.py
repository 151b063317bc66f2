"""The settings of one steering experiment: an entry under ``experiments:`` in
``params.yaml``, the flags of ``latentsteer steer``, or the keywords of ``latentsteer.steer``
(:mod:`latentsteer.experiment` describes the whole run)."""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from latentsteer.goalspec import SYNTAX, check_goal_set, parse_goal
from latentsteer.methods import VOCABULARY
from latentsteer.model import MultiHeadVAE
from latentsteer.tolerances import goal_tolerance, tolerance

if TYPE_CHECKING:
    from latentsteer.domain import Domain

#: Oracle calls per start unless an experiment says otherwise: one default for every method
#: and domain, the library, the CLI and the pipeline.
DEFAULT_BUDGET = 100


@dataclass
class ExperimentConfig:
    """One experiment (mirrors an entry of ``params.yaml: experiments``)."""

    # What to reach, e.g. [thickness=max, digit=keep] (goalspec.py); no default: the
    # properties are the model's (its domain's), so every entry names its own.
    goals: list[str] = field(default_factory=list)
    # one of the vocabulary (methods.py) that the model's domain takes (Domain.methods)
    method: str = "latent"
    task: str | None = None  # experiments with the same task are compared in the report
    # The experiment this entry repeats on other starts (another seed): the report shows the
    # seeds' mean and worst next to it instead of a row of its own.
    replicate: str | None = None
    start: str = "random:256"  # random:N, test:A-B, or a path to images
    seed: int = 0  # seeds the prior draws
    steps: int = 300  # largest number of optimiser steps (samples stop earlier when confirmed)
    lr: float = 0.05  # step size (codes for latent, pixels for data_space)
    optimizer: Literal["adam", "sgd"] = "adam"
    readout: Literal["code", "cycle", "mixed"] = "mixed"  # how heads read a code (readout.py)
    penalty: float = 10.0  # weight of the penalty on broken constraints (keep goals)
    # Band of target/keep goals on the heads, in the property's units; null = half the
    # oracle's tolerance of that property (MNIST thickness: 0.25 px).
    tol: float | None = None
    confidence: float = 0.9  # probability class goals ask of the head
    prior: float = 0.05  # prior penalty weight (0 = off)
    radius: float | None = None  # trust region ||z|| <= radius (null = off)
    knn: float = 0.0  # kNN-density penalty weight (0 = off)
    knn_k: int = 10  # neighbours for the kNN density
    cycle: float = 0.0  # decode-encode consistency penalty weight (0 = off)
    proximity: float = 0.0  # penalty weight on pixel change from the start (0 = off)
    stop_when_satisfied: bool = True  # freeze a sample once all its goals hold
    grad_tol: float | None = 1e-5  # freeze a sample when its gradient norm falls below
    patience: int | None = None  # freeze a sample after this many steps without gain (unguided)
    # Closed loop (guide.py): every check_every steps the in-loop oracles (measures and the
    # guide judge) read the moving samples; a sample stops once they confirm its goals, an
    # open-ended one returns to its best confirmed frame. Results are certified by the
    # certifier, which the loop never sees. Off: the heads alone steer and stop.
    guide: bool = True  # closed loop: in-loop oracles check, stop, re-aim (not data_space)
    check_every: int = 10  # steps between in-loop checks
    guide_confidence: float = 0.5  # least probability the guide judge gives a class goal (K)
    guide_patience: int = 5  # checks without a better frame before a max/min sample stops
    guide_weight: float = 0.0  # penalty on the guide judge's shortfall on class goals (0 = off)
    keep_weight: float = 30.0  # the same penalty on a kept digit (digit=keep; 0 = off)
    # The samples with no confirmed frame where a digit is kept start again, with the keep
    # floor they reached and 3x the keep penalty each time (retry.py).
    retries: int = 2  # attempts more for unconfirmed samples that keep a digit (0 = off)
    trust: float = 2.0  # heads trusted while predicted and measured change differ < trust·tol
    # Per-property tolerance of the oracle success rules, in the property's units; unset
    # properties take the domain's tolerances (MNIST: thickness 0.5 px, slant 0.05 rad...).
    oracle_tol: dict[str, float] = field(default_factory=dict)  # e.g. thickness=0.3 (px)
    record_every: int = 10  # keep every N-th step (round) in trajectory.npz (plus the last)
    # gradient-free methods: model calls per sample, the start's included (a molecule
    # request's `budget` is oracle calls per start: the two are kept apart by name)
    model_budget: int = 300
    population: int = 16  # random search and CMA-ES: candidates per round; bayesopt: q
    sigma: float = 0.5  # random search: proposal spread; CMA-ES: initial step (prior sd)
    box: float = 1.5  # bayesopt: half-width of the box around each start (prior sd)
    init: int = 16  # bayesopt: codes evaluated before the first GP, the start's included
    # Every method: frames the in-loop oracles read (closed loop), or distinct samples
    # measured (a domain's proposers, searches and GA), counted per start.
    budget: int = DEFAULT_BUDGET  # oracle calls per start, for every method
    similarity: float | None = None  # least similarity of a result to its start (null: none)
    # property -> [lo, hi] a result must lie in (null: an open side); --bound prop=LO:HI
    bounds: dict[str, list[float | None]] = field(default_factory=dict)
    rounds: int = 2  # proposal rounds of a domain's own proposers (each spends what is left)
    # settings of the domain's own proposers by name (Domain.proposer_settings)
    proposer: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.goals, str) or not self.goals:
            raise ValueError(f"goals must list at least one goal; {SYNTAX}")
        self.specs = [parse_goal(g) for g in self.goals]
        check_goal_set(self.specs)
        # params.yaml is checked against the hints when read (config.section); a config built
        # in Python or from flags is not, so the named choices are checked here too.
        for key, choices in _choices(type(self)).items():
            if getattr(self, key) not in choices:
                raise ValueError(f"unknown {key} {getattr(self, key)!r}; accepted: "
                                 f"{', '.join(choices)}")  # fmt: skip
        if self.method not in VOCABULARY:
            raise ValueError(f"unknown method {self.method!r}; accepted: "
                             f"{', '.join(VOCABULARY)}")  # fmt: skip
        if not isinstance(self.guide, bool):
            raise ValueError(f"guide must be true or false; got {self.guide!r}")
        for key in ("steps", "knn_k", "record_every", "population", "check_every",
                    "guide_patience", "budget", "rounds"):  # fmt: skip
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer; got {value!r}")
        if self.similarity is not None and (
            isinstance(self.similarity, bool) or not isinstance(self.similarity, int | float)
            or not 0.0 <= self.similarity <= 1.0
        ):  # fmt: skip
            raise ValueError(f"similarity must be a number in [0, 1] or null; "
                             f"got {self.similarity!r}")  # fmt: skip
        if not isinstance(self.bounds, Mapping):
            raise ValueError(f"bounds must map properties to [lo, hi]; got {self.bounds!r}")
        for prop, pair in self.bounds.items():
            finite = isinstance(pair, list | tuple) and len(pair) == 2 and all(
                v is None or (isinstance(v, int | float) and math.isfinite(v)) for v in pair
            )  # fmt: skip
            if not finite or (None not in pair and pair[0] > pair[1]):
                raise ValueError(f"bounds.{prop} must be [lo, hi] with lo <= hi (null: open); "
                                 f"got {pair!r}")  # fmt: skip
        if not isinstance(self.proposer, Mapping):
            raise ValueError(f"proposer must map setting names to values; got {self.proposer!r}")
        if not self.retries >= 0:
            raise ValueError(f"retries must be >= 0; got {self.retries!r}")
        if self.tol is not None and not self.tol > 0:
            raise ValueError(f"tol must be positive or null; got {self.tol!r}")
        for key in ("lr", "sigma", "box", "trust"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be positive; got {getattr(self, key)!r}")
        for key in ("penalty", "prior", "knn", "cycle", "proximity", "guide_weight",
                    "keep_weight"):  # fmt: skip
            if not getattr(self, key) >= 0:
                raise ValueError(f"{key} must be >= 0; got {getattr(self, key)!r}")
        for key in ("confidence", "guide_confidence"):
            if not 0 < getattr(self, key) < 1:
                raise ValueError(f"{key} must be between 0 and 1; got {getattr(self, key)!r}")
        if not isinstance(self.oracle_tol, dict):
            raise ValueError(
                f"oracle_tol must map properties to tolerances, e.g. {{prop: 0.5}}; "
                f"got {self.oracle_tol!r}"
            )
        for prop in self.oracle_tol:
            tolerance(prop, self.oracle_tol)  # a positive number for a known property
        if self.radius is not None and not self.radius > 0:
            raise ValueError(f"radius must be positive or null; got {self.radius!r}")
        if self.model_budget < 2 or self.init < 2:
            raise ValueError(f"model_budget and init must be at least 2; got "
                             f"{self.model_budget}, {self.init}")  # fmt: skip
        if self.method == "cmaes" and self.population < 2:
            raise ValueError("cmaes needs population >= 2")
        if self.method == "data_space" and self.start.startswith("random:"):
            raise ValueError("data_space ascent moves pixels: start it from images (test:A-B)")

    def as_params(self) -> dict:
        """The settings as a plain dict (for MLflow and metrics)."""
        return {k: v for k, v in asdict(self).items() if k != "specs"}

    @property
    def properties(self) -> list[str]:
        """Every property a rule reads, goals first, then bounds, without repeats."""
        return list(dict.fromkeys([s.prop for s in self.specs] + list(self.bounds)))

    def describe(self) -> str:
        """The goals and constraints in one line, e.g. ``plogp=max, similarity >= 0.4``."""
        parts = list(self.goals)
        parts += [f"{p} in [{'' if lo is None else lo}, {'' if hi is None else hi}]"
                  for p, (lo, hi) in self.bounds.items()]  # fmt: skip
        if self.similarity is not None:
            parts.append(f"similarity >= {self.similarity:g}")
        return ", ".join(parts)


@functools.cache
def _choices(cls: type) -> dict[str, tuple[str, ...]]:
    """``{field: its Literal choices}`` of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: typing.get_args(hints[f.name])
        for f in fields(cls)
        if typing.get_origin(hints[f.name]) is Literal
    }


def heads_band(cfg: ExperimentConfig, model: MultiHeadVAE, prop: str) -> float:
    """How near its target the heads must read a band goal on ``prop``: ``cfg.tol``, else
    half the oracle's tolerance, so the heads aim well inside what the oracle accepts."""
    if cfg.tol is not None:
        return cfg.tol
    column = model.head_spec(prop).column
    return 0.5 * goal_tolerance(column, cfg.oracle_tol, model.domain.tolerances)


#: Settings every domain's experiments take: what to reach, from where, how it is grouped,
#: and the oracle budget.
COMMON_SETTINGS = ("goals", "start", "method", "seed", "task", "replicate", "guide", "budget")
#: Settings only a domain with proposers of its own reads (constraints relative to the
#: start, rounds, the proposers' own settings): the engine's trajectories do not.
PROPOSAL_SETTINGS = ("similarity", "bounds", "rounds", "proposer")


def configure(domain: Domain, settings: Mapping[str, Any]) -> ExperimentConfig:
    """An experiment on ``domain``'s models: the domain's defaults
    (``Domain.experiment_defaults``), then ``settings``; checked against what the domain
    takes (``Domain.methods``, ``Domain.settings``, ``Domain.check_experiment``).

    Raises:
        ValueError: an unknown setting, one the domain does not use, a method it does not
            take, or a bad value (one line naming it).
    """
    known = [f.name for f in fields(ExperimentConfig)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a steering setting; accepted: "
                         f"{', '.join(known)}")  # fmt: skip
    taken = settings_of(domain)
    unused = [k for k in settings if k not in taken]
    if unused:
        raise ValueError(f"{', '.join(unused)}: not used by {domain.name} models; their "
                         f"settings: {', '.join(taken)}")  # fmt: skip
    merged = {**domain.experiment_defaults, **settings}
    method = merged.get("method", domain.methods[0])
    if method not in domain.methods:
        raise ValueError(f"method {method}: not a method of {domain.name} models; "
                         f"theirs: {', '.join(domain.methods)}")  # fmt: skip
    cfg = ExperimentConfig(**{"method": method, **merged})
    domain.check_experiment(cfg)
    return cfg


def settings_of(domain: Domain) -> list[str]:
    """The :class:`ExperimentConfig` fields ``domain``'s experiments take: the common ones,
    then ``Domain.settings`` (by default every field the engine's trajectories read)."""
    own = domain.settings
    if own is None:
        own = tuple(f.name for f in fields(ExperimentConfig) if f.name not in PROPOSAL_SETTINGS)
    return list(dict.fromkeys([*COMMON_SETTINGS, *own]))
