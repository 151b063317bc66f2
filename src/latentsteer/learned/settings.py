"""The pipeline's settings of fitted properties and of the experiments that steer them.

``params.yaml`` has, per domain, a ``properties`` section (MNIST at the top level,
molecules under ``molecules``): one ``fit_property@<name>`` stage per entry
(:class:`PropertyConfig`), and a ``property_experiments`` section: one stage per entry
(:class:`PropertyExperimentConfig`), steering on the model the property was fitted onto.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from latentsteer.experiment_config import DEFAULT_BUDGET


@dataclass
class PropertyConfig:
    """``properties.<name>``: the table a property is fitted from."""

    table: str  # the domain's table of samples and measured values
    column: str  # the property's column (array) in it
    tolerance: float | None = None  # goals' tolerance in its units; null: the oracle's CV MAE
    seed: int = 0  # the head's split, the oracles' folds and initial weights

    def __post_init__(self) -> None:
        if not self.table or not self.column:
            raise ValueError("table and column must be given")
        if self.tolerance is not None and not (
            math.isfinite(self.tolerance) and self.tolerance > 0
        ):
            raise ValueError(f"tolerance must be a positive number or null; got {self.tolerance!r}")


@dataclass
class PropertyExperimentConfig:
    """``property_experiments.<name>``: steering on a fitted property's model.

    ``start`` is what the domain reads (MNIST ``random:N``; molecules a ``.smi`` file), or
    ``lowest:N``: the ``N`` samples of the property's own table with the lowest measured
    values (molecules). ``baselines`` run on the same starts at the same oracle budget.
    """

    property: str  # the fitted property whose model steers (properties.<name>)
    goals: list[str]
    start: str = "random:256"
    bounds: dict[str, list[float | None]] = field(default_factory=dict)
    similarity: float | None = None  # molecules: Tanimoto to the start (null: the default)
    budget: int = DEFAULT_BUDGET  # oracle calls per start and method
    baselines: list[str] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.goals:
            raise ValueError("goals must list at least one goal")
        if isinstance(self.budget, bool) or self.budget < 1:
            raise ValueError(f"budget must be a positive integer; got {self.budget!r}")

    def settings(self) -> dict[str, object]:
        """The experiment settings the domain's :func:`~latentsteer.steer` takes."""
        out: dict[str, object] = {"budget": self.budget, "seed": self.seed}
        if self.bounds:
            out["bounds"] = self.bounds
        if self.similarity is not None:
            out["similarity"] = self.similarity
        return out
