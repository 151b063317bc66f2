"""What a fitted property records, and what a domain's learned oracle must do.

A property fitted from a table lives in its model folder under ``properties/<name>/``:
``card.json`` (a :class:`PropertyCard`) and the domain's own files for its oracle. Two
data-space models are fitted on the table, of families other than the head's:

* the **certifier** grades results and is never consulted while steering;
* the **guide** is what the closed loop and the baselines may consult (a separate fit of
  another family), so the oracle that steers a result never certifies it.

A learned oracle is evidence only near its data: each reading comes with the
*applicability* of the sample (molecules: Tanimoto similarity to the nearest table molecule;
images: distance to the nearest table image in the digit certifier's features), and a sample
outside the recorded threshold is *unverifiable*, never a success.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import numpy as np

from latentsteer.errors import LatentsteerError

CARD_FILE = "card.json"
FOLDER = "properties"
Role = Literal["certifier", "guide"]


@dataclass
class PropertyCard:
    """One fitted property (``properties/<name>/card.json``).

    Attributes:
        name: the head's name and the goal's property.
        column: its column in the table.
        table: the table's file name, as given.
        rows: distinct samples fitted on.
        certifier, guide: what each oracle is (family and inputs).
        cv: cross-validated errors in the property's units (``certifier_mae``,
            ``certifier_r2``, ``guide_mae``, ``guide_r2``; 5 folds).
        tolerance: what counts as "got it", in the property's units.
        tolerance_from: ``cross-validated error`` (the certifier's MAE) or ``given``.
        applicability: how inside-the-domain is measured.
        threshold: the applicability threshold.
        inside_when: ``at_least`` (a similarity) or ``at_most`` (a distance).
        value_range: the table's smallest and largest value.
    """

    name: str
    column: str
    table: str
    rows: int
    certifier: str
    guide: str
    cv: dict[str, float]
    tolerance: float
    tolerance_from: str
    applicability: str
    threshold: float
    inside_when: Literal["at_least", "at_most"]
    value_range: tuple[float, float] = (float("nan"), float("nan"))
    extra: dict[str, object] = field(default_factory=dict)

    def inside(self, applicability: np.ndarray) -> np.ndarray:
        """``(n,)`` whether samples of these applicability values are inside the domain."""
        a = np.asarray(applicability, dtype=np.float64)
        ok = a >= self.threshold if self.inside_when == "at_least" else a <= self.threshold
        return ok & np.isfinite(a)

    def describe(self, role: Role = "certifier") -> str:
        """For ``metrics.json``: which learned model, on which data."""
        what = self.certifier if role == "certifier" else self.guide
        return f"learned {self.name} {role}: {what}, fitted on {self.rows} rows of {self.table}"

    def write(self, folder: str | os.PathLike[str]) -> None:
        """``card.json`` in ``folder`` (which the caller writes atomically)."""
        data = asdict(self)
        data["value_range"] = list(self.value_range)
        Path(folder, CARD_FILE).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, folder: str | os.PathLike[str]) -> PropertyCard:
        """The card in ``folder``.

        Raises:
            LatentsteerError: missing, not JSON, or not a property card (one line).
        """
        path = Path(folder, CARD_FILE)
        try:
            data = json.loads(path.read_text())
            known = {f.name for f in fields(cls)}
            card = cls(**{k: v for k, v in data.items() if k in known})
            card.value_range = tuple(card.value_range)  # type: ignore[assignment]
            float(card.threshold), float(card.tolerance)
        except FileNotFoundError:
            raise LatentsteerError(f"{path} is missing: not a fitted property") from None
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise LatentsteerError(f"{path} is not a property card ({exc})") from None
        return card


class PropertyOracle(Protocol):
    """A domain's learned oracle of one property (both roles), as loaded from its folder.

    Samples are the domain's: molecules a ``list[str]`` of SMILES (an unreadable one reads
    NaN), images an ``(n, 28, 28)`` float tensor or array in [0, 1].
    """

    card: PropertyCard

    def predict(self, samples: object, role: Role = "certifier") -> np.ndarray:
        """``(n,)`` the role's predicted values (NaN for a sample it cannot read)."""
        ...

    def applicability(self, samples: object) -> np.ndarray:
        """``(n,)`` each sample's applicability value (see :attr:`PropertyCard.applicability`)."""
        ...


def property_folders(model_dir: str | os.PathLike[str]) -> list[Path]:
    """The fitted properties' folders of a model folder, by name."""
    root = Path(model_dir) / FOLDER
    return sorted(p for p in root.iterdir() if (p / CARD_FILE).is_file()) if root.is_dir() else []


def cards_of(model_dir: str | os.PathLike[str]) -> dict[str, PropertyCard]:
    """The cards of a model folder's fitted properties, by name (their oracles unread)."""
    cards = (PropertyCard.read(f) for f in property_folders(model_dir))
    return {c.name: c for c in cards}


class _HasTolerances(Protocol):
    tolerances: Mapping[str, float]


D = TypeVar("D", bound=_HasTolerances)


def with_tolerances(domain: D, cards: Mapping[str, PropertyCard]) -> D:
    """A copy of ``domain`` whose tolerance table has the fitted properties' too (the
    registry's object stays as it was); ``domain`` itself when there are none."""
    if not cards:
        return domain
    copied = copy.copy(domain)
    copied.tolerances = {**domain.tolerances, **{n: c.tolerance for n, c in cards.items()}}
    return copied
