"""A model folder's fitted properties, put to work: their learned oracles beside the domain's.

:func:`load_properties` reads every ``properties/<name>/`` of a model folder (the domain loads
its oracle) and gives the model's domain their tolerances, so goals on them are graded in
their own units. :func:`learned_readings` is what an oracle reads of a learned property: the
role's prediction where the sample is inside the applicability domain, NaN (unverifiable)
outside it. :class:`WithLearned` adds those readings to a domain's oracle of decoded samples
(MNIST), in the role it plays: the in-loop oracle reads the guides, the certifier the
certifiers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from latentsteer.domain import Oracle, OracleReport
from latentsteer.errors import LatentsteerError
from latentsteer.learned.card import PropertyOracle, Role, property_folders, with_tolerances
from latentsteer.model import MultiHeadVAE


def load_properties(
    model: MultiHeadVAE, model_dir: str | os.PathLike[str]
) -> dict[str, PropertyOracle]:
    """The learned oracles of ``model_dir``'s fitted properties, by name; the model's domain
    is replaced by a copy whose tolerances include theirs.

    Raises:
        LatentsteerError: a property folder whose property the model has no head for, or
            whose files are damaged (one line).
    """
    oracles: dict[str, PropertyOracle] = {}
    for folder in property_folders(model_dir):
        oracle = model.domain.load_property_oracle(folder)
        name = oracle.card.name
        if name not in model.head_names:
            raise LatentsteerError(f"{folder}: the model has no head {name!r} for this "
                                   "property (a folder copied from another model?)")  # fmt: skip
        oracles[name] = oracle
    model.domain = with_tolerances(model.domain, {n: o.card for n, o in oracles.items()})
    return oracles


def learned_readings(
    oracles: Mapping[str, PropertyOracle], samples: object, role: Role,
    names: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The learned properties' readings of ``samples`` (the domain's form, ``n`` of them).

    Returns:
        ``values``: one column per property, the role's prediction, NaN where the sample is
        outside the applicability domain (unverifiable) or unreadable; ``applicability``:
        the same columns, each sample's applicability value.
    """
    values, applicability = {}, {}
    for name, oracle in oracles.items():
        if names is not None and name not in names:
            continue
        a = np.asarray(oracle.applicability(samples), dtype=np.float64)
        v = np.asarray(oracle.predict(samples, role), dtype=np.float64)
        values[name] = np.where(oracle.card.inside(a), v, np.nan)
        applicability[name] = a
    return pd.DataFrame(values), pd.DataFrame(applicability)


class WithLearned:
    """A domain's oracle of decoded samples, reading the learned properties too.

    Args:
        base: the domain's oracle (measures and judge).
        oracles: the learned properties' oracles, by name.
        role: ``guide`` for the in-loop oracle, ``certifier`` for the one that grades.
    """

    def __init__(self, base: Oracle, oracles: Mapping[str, PropertyOracle], role: Role) -> None:
        self.base, self.oracles, self.role = base, dict(oracles), role
        self.measures = (*base.measures, *self.oracles)
        self.class_column = base.class_column
        learned = [o.card.describe(role) for o in self.oracles.values()]
        self.describe = "; ".join([base.describe, *learned])

    def read(
        self,
        samples: torch.Tensor,
        workers: int | None = None,
        properties: Sequence[str] | None = None,
    ) -> OracleReport:
        """The base oracle's report with a column per learned property asked for (NaN
        outside its applicability domain) and ``applicability_<name>`` beside it."""
        own = None if properties is None else [p for p in properties if p in self.base.measures]
        report = self.base.read(samples, workers, own)
        values, applicability = learned_readings(self.oracles, samples, self.role, properties)
        for name in values.columns:
            report.measures[name] = values[name].to_numpy()
            report.measures[f"applicability_{name}"] = applicability[name].to_numpy()
        return report

    def probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        return self.base.probabilities(samples)

    def log_probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        return self.base.log_probabilities(samples)

    def embed(self, samples: torch.Tensor) -> torch.Tensor:
        return self.base.embed(samples)
