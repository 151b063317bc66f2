"""Put the heads' readings on the scale of RDKit's values, by quantiles on held-out molecules.

A regression head trained with a squared error pulls its predictions towards the mean: the
QED head (R² 0.82) rarely reads 0.9 even for molecules RDKit measures above it, so a rule
such as "QED ≥ 0.9" is nearly never met by the heads' reading, and their verdict on a
result says little. Quantile matching on the validation molecules maps the ``q``-th quantile
of a head's predictions to the ``q``-th quantile of the measured values. The map is monotone,
so it never changes which of two candidates a head prefers; it changes what a head's reading
says in the property's own units (thresholds, bounds and tolerances).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from latentsteer.model import MultiHeadVAE

QUANTILES = np.linspace(0.0, 1.0, 201)
LEAST = 20  # fewest held-out molecules to read quantiles from


@dataclass
class HeadCalibration:
    """Per label column: the predicted and measured quantiles that map one onto the other.

    Attributes:
        knots: column → ``(predicted (q,), measured (q,))``, both non-decreasing.
        molecules: how many held-out molecules the quantiles were read from.
    """

    knots: dict[str, tuple[np.ndarray, np.ndarray]]
    molecules: int

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (heads' readings, a column per property) with every calibrated column
        mapped; values beyond the held-out range keep their distance to its end."""
        out = frame.copy()
        for column, (pred, true) in self.knots.items():
            if column not in out:
                continue
            v = out[column].to_numpy(dtype=float)
            mapped = np.interp(v, pred, true)
            mapped = np.where(v < pred[0], true[0] + (v - pred[0]), mapped)
            mapped = np.where(v > pred[-1], true[-1] + (v - pred[-1]), mapped)
            out[column] = mapped
        return out


def fit_calibration(
    model: MultiHeadVAE, tokens: torch.Tensor, measured: pd.DataFrame
) -> HeadCalibration:
    """Quantile maps of the model's regression heads.

    Args:
        tokens: ``(m, L)`` token rows of held-out molecules.
        measured: their RDKit values, one row each, a column per head's label column.

    Raises:
        ValueError: fewer than 20 molecules. A head whose column ``measured`` lacks (a
            property fitted from a user's table) is left uncalibrated.
    """
    from latentsteer.domains.molecules.proposals import read_rows

    if len(tokens) < LEAST or len(tokens) != len(measured):
        raise ValueError(f"calibration needs the same >= 20 molecules in tokens and values; "
                         f"got {len(tokens)} and {len(measured)}")  # fmt: skip
    read = read_rows(model, tokens.to(model.device))
    knots = {}
    for column in read.columns:
        if column not in measured:
            continue  # a fitted property's head: the labels have no values of it (stays raw)
        pred = np.quantile(read[column].to_numpy(dtype=float), QUANTILES)
        true = np.quantile(measured[column].to_numpy(dtype=float), QUANTILES)
        knots[column] = (np.maximum.accumulate(pred), np.maximum.accumulate(true))
    return HeadCalibration(knots, len(tokens))


def calibration_from_labels(
    model: MultiHeadVAE, labels_dir: str | os.PathLike[str], split: str = "val"
) -> HeadCalibration | None:
    """:func:`fit_calibration` on the ``split`` molecules of the ``molecules_labels`` stage
    (the validation molecules: the heads never trained on them); ``None`` where fewer than
    :data:`LEAST` of them fit the model's vocabulary (the raw heads then rank).

    Raises:
        DataSourceError: missing or damaged labels.
    """
    from latentsteer.domains.molecules.labelled import load_molecules

    vocabulary = model.domain.vocabulary  # type: ignore[attr-defined]
    from latentsteer.domains.molecules.properties import COLUMNS

    # the heads on RDKit's labels (a property fitted from a user's table has none)
    heads = tuple(h for h in model.config.heads if h.column in COLUMNS)
    held = load_molecules(labels_dir, split, heads, vocabulary)
    if len(held.table) < LEAST:
        return None
    return fit_calibration(model, held.data.images, held.table)
