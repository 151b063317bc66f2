"""The molecule steering experiments of the pipeline (``molecules.experiments`` in
params.yaml): which test molecules start, which goals, which thresholds and baselines.

=====================  ==============================================================
``starts.n``            how many test molecules start
``starts.lowest``       take the ``n`` with the lowest value of this property (the
                        constrained-optimisation protocol), else a seeded draw
``starts.where``        property → ``[lo, hi]``: only test molecules in this range
``goals``, ``bounds``   as :class:`~latentsteer.experiment_config.ExperimentConfig`
``similarity``          δ, or a list of them (the method runs once, and is graded per δ
                        with its own budget)
``method``, ``guide``   ``latent`` (default); ``guide: false``: the unguarded ascent
``baselines``           methods run on the same starts and budget: ``random_search``, ``cmaes``,
                        ``bayesopt``, ``ga``, ``dataset``
``baseline_similarity`` the thresholds the baselines run at (null: every δ)
``baseline_starts``     run the baselines on the first N starts only (the ascent's row on
                        those same starts is reported beside them); null: all
``budget``              oracle calls per start and method
=====================  ==============================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from latentsteer.domains.molecules.properties import COLUMNS
from latentsteer.domains.molecules.vocabulary import Vocabulary
from latentsteer.experiment_config import DEFAULT_BUDGET

BASELINES = ("random_search", "cmaes", "bayesopt", "ga", "dataset")


@dataclass
class StartsConfig:
    """``molecules.experiments.<name>.starts``."""

    n: int = 200
    lowest: str | None = None
    where: dict[str, list[float | None]] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"starts.n must be a positive integer; got {self.n!r}")
        for prop in ([self.lowest] if self.lowest else []) + list(self.where):
            if prop not in COLUMNS:
                raise ValueError(f"starts: unknown property {prop!r}; accepted: "
                                 f"{', '.join(COLUMNS)}")  # fmt: skip
        for prop, pair in self.where.items():
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ValueError(f"starts.where.{prop} must be [lo, hi]; got {pair!r}")


@dataclass
class MoleculeExperimentConfig:
    """One ``molecules.experiments`` entry (see the module docstring)."""

    goals: list[str]
    starts: dict = field(default_factory=dict)
    similarity: float | list[float] = 0.4
    bounds: dict[str, list[float | None]] = field(default_factory=dict)
    method: str = "latent"
    guide: bool = True
    baselines: list[str] = field(default_factory=list)
    baseline_similarity: list[float] | None = None
    baseline_starts: int | None = None
    budget: int = DEFAULT_BUDGET  # oracle calls per start, as ExperimentConfig.budget
    seed: int = 0

    def __post_init__(self) -> None:
        self.start_config = StartsConfig(**self.starts) if isinstance(self.starts, dict) \
            else None  # fmt: skip
        if self.start_config is None:
            raise ValueError(f"starts must be a mapping; got {self.starts!r}")
        if self.method != "latent":
            raise ValueError(f"method must be latent (the baselines go under baselines:); "
                             f"got {self.method!r}")  # fmt: skip
        if not isinstance(self.guide, bool):
            raise ValueError(f"guide must be true or false; got {self.guide!r}")
        for b in self.baselines:
            if b not in BASELINES:
                raise ValueError(f"unknown baseline {b!r}; accepted: {', '.join(BASELINES)}")
        if self.baseline_starts is not None and (isinstance(self.baseline_starts, bool)
                                                 or self.baseline_starts < 1):  # fmt: skip
            raise ValueError(f"baseline_starts must be a positive integer or null; got "
                             f"{self.baseline_starts!r}")  # fmt: skip

    def baselines_at(self, delta: float) -> list[str]:
        """The baselines that run at threshold ``delta``."""
        at = self.baseline_similarity
        return list(self.baselines) if at is None or delta in at else []

    @property
    def thresholds(self) -> list[float]:
        """Every δ to grade at."""
        return list(self.similarity) if isinstance(self.similarity, list) else [self.similarity]


def select_starts(table: pd.DataFrame, vocabulary: Vocabulary, cfg: StartsConfig) -> pd.DataFrame:
    """The test molecules an experiment starts from (rows of the labels table).

    Only molecules the model's vocabulary writes can start (the others are counted in the
    evaluation's ``test_outside_vocabulary``).

    Raises:
        ValueError: fewer than ``cfg.n`` molecules qualify.
    """
    keep = table.valid.to_numpy() & table.selfies.notna().to_numpy()
    keep &= vocabulary.fits(table.selfies.where(keep, ""))
    for prop, (lo, hi) in cfg.where.items():
        v = table[prop].to_numpy(dtype=float)
        keep &= (v >= (-math.inf if lo is None else lo)) & (v <= (math.inf if hi is None else hi))
    pool = table[keep]
    if len(pool) < cfg.n:
        raise ValueError(f"only {len(pool)} test molecules qualify as starts; asked for {cfg.n}")
    if cfg.lowest is not None:
        return pool.sort_values(cfg.lowest, kind="stable").head(cfg.n).reset_index(drop=True)
    rows = np.random.default_rng(cfg.seed).choice(len(pool), size=cfg.n, replace=False)
    return pool.iloc[np.sort(rows)].reset_index(drop=True)
