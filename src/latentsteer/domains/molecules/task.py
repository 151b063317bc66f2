"""What a molecule steering request asks: goals on RDKit properties (the goal syntax of
:mod:`latentsteer.goalspec`), optional bounds a result must lie in, and a Tanimoto similarity
threshold δ to its start, with the settings of the method that serves it.

The rules that say whether a result got it are the engine's, shared with every domain:
:mod:`latentsteer.rules` for the goals, :mod:`latentsteer.verdicts` for the bounds, the
similarity to the start and the choice among measured candidates. Tolerances are the
domain's, per property, in its units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from latentsteer.domains.molecules.methods import METHODS
from latentsteer.domains.molecules.properties import COLUMNS
from latentsteer.goalspec import check_goal_set, parse_goal

#: Oracle calls per start unless a request or experiment says otherwise (one default for
#: the library, the CLI and the pipeline).
DEFAULT_BUDGET = 100


@dataclass
class MoleculeTask:
    """One molecule steering request (a ``molecules.experiments`` entry, or CLI flags).

    Attributes:
        goals: goal strings on RDKit properties, e.g. ``["plogp=max"]``.
        similarity: δ, the least Tanimoto similarity of a result to its start.
        bounds: property → ``[lo, hi]`` a result must lie in (``None``: open side).
        budget: oracle calls (distinct molecules RDKit measures) per start and method.
        method: ``latent`` (default: the model's heads propose, RDKit checks, see
            :mod:`.proposals`) or a baseline (``random_search``, ``cmaes``, ``bayesopt``,
            ``ga``, ``dataset``).
        guide: ``False`` with ``latent`` is the counter-example: plain ascent, the last
            decoded molecule returned, no checks (as ``guide: false`` on MNIST).
        seed: seeds every random choice.
        rounds: proposal rounds of ``latent``: each later round proposes again from every
            start's best acceptable molecule so far (as RDKit measured it), with what is
            left of the budget.
        steps, replicas, lr, token_samples, temperature, invert_steps, noise, edits: how ``latent``
            proposes (:func:`~.proposals.propose`); the defaults are the measured ones.
        neighbours: ``latent`` also offers the heads, in its first round, this many
            training molecules most similar to each start (within δ; :mod:`.neighbours`),
            when the training molecules are at hand; 0 = off.
        sigma, population: proposal spread and size of ``random_search`` and ``cmaes``
            (``population``: also the codes ``bayesopt`` proposes per round).
        box, init: ``bayesopt``'s box around each starting code (half-width per dimension,
            in code units) and the codes it measures before its first GP.
    """

    goals: list[str]
    similarity: float = 0.4
    bounds: dict[str, list[float | None]] = field(default_factory=dict)
    budget: int = DEFAULT_BUDGET
    method: str = "latent"
    guide: bool = True
    seed: int = 0
    rounds: int = 2
    steps: int = 40
    replicas: int = 8
    lr: float = 0.02
    token_samples: int = 3
    temperature: float = 1.0
    invert_steps: int = 200
    noise: float = 0.05
    edits: int = 64
    neighbours: int = 64
    sigma: float = 0.3
    population: int = 10
    # ±0.6 per dimension spreads codes about as far as random search's sigma (a uniform
    # box's sd is 0.6/√3 = 0.35), so the two baselines differ in how they choose, not where.
    box: float = 0.6
    init: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.goals, str) or not self.goals:
            raise ValueError("goals must be a non-empty list of goal strings")
        self.specs = [parse_goal(g) for g in self.goals]
        check_goal_set(self.specs)
        for spec in self.specs:
            _check_property(spec.prop, f"goal {spec.text!r}")
        if not any(s.kind != "keep" for s in self.specs):
            raise ValueError("at least one goal must ask for a change (max, min, a value or +D)")
        if isinstance(self.similarity, bool) or not isinstance(self.similarity, int | float) \
                or not 0.0 <= self.similarity <= 1.0:  # fmt: skip
            raise ValueError(f"similarity must be a number in [0, 1]; got {self.similarity!r}")
        if not isinstance(self.bounds, Mapping):
            raise ValueError(f"bounds must map properties to [lo, hi]; got {self.bounds!r}")
        for prop, pair in self.bounds.items():
            _check_property(prop, "bounds")
            ok = (
                isinstance(pair, list | tuple)
                and len(pair) == 2
                and all(
                    v is None or (isinstance(v, int | float) and math.isfinite(v)) for v in pair
                )
            )
            if not ok or (None not in pair and pair[0] > pair[1]):
                raise ValueError(f"bounds.{prop} must be [lo, hi] with lo <= hi (null: open); "
                                 f"got {pair!r}")  # fmt: skip
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; accepted: {', '.join(METHODS)}")
        if not isinstance(self.guide, bool):
            raise ValueError(f"guide must be true or false; got {self.guide!r}")
        if not self.guide and self.method != "latent":
            raise ValueError(f"guide: false is the unguarded latent ascent; method "
                             f"{self.method} has no unguarded form")  # fmt: skip
        for key in (
            "budget",
            "rounds",
            "edits",
            "neighbours",
            "steps",
            "replicas",
            "token_samples",
            "invert_steps",
            "population",
            "init",
        ):
            value = getattr(self, key)
            least = 0 if key in ("token_samples", "invert_steps", "edits", "neighbours") else 1
            least = 2 if key == "init" else least  # a GP needs two points to fit
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{key} must be an integer >= {least}; got {value!r}")
        for key in ("lr", "temperature", "sigma", "box"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{key} must be a positive number; got {value!r}")
        if isinstance(self.noise, bool) or not isinstance(self.noise, int | float) \
                or self.noise < 0:  # fmt: skip
            raise ValueError(f"noise must be a number >= 0; got {self.noise!r}")

    @property
    def properties(self) -> list[str]:
        """Every property a rule reads, goals first, without repeats."""
        return list(dict.fromkeys([s.prop for s in self.specs] + list(self.bounds)))


def _check_property(prop: str, where: str) -> None:
    if prop not in COLUMNS:
        raise ValueError(f"{where}: unknown property {prop!r}; accepted: {', '.join(COLUMNS)}")


def describe(task: MoleculeTask) -> str:
    """The task in one line, e.g. ``plogp=max, similarity >= 0.4``."""
    parts = list(task.goals)
    parts += [f"{p} in [{'' if lo is None else lo}, {'' if hi is None else hi}]"
              for p, (lo, hi) in task.bounds.items()]  # fmt: skip
    return f"{', '.join(parts)}, similarity >= {task.similarity:g}"
