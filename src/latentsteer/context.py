"""What every experiment reads besides its own settings (:class:`Context`), and the
safeguards an experiment's settings build over it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from latentsteer.domain import Oracle
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.learned.card import PropertyCard
from latentsteer.model import MultiHeadVAE
from latentsteer.safeguards import (
    CycleConsistency,
    KNNDensity,
    PriorPenalty,
    Proximity,
    Safeguard,
)


@dataclass
class Context:
    """What every experiment reads besides its own settings.

    Attributes:
        model: the trained VAE (its domain reads starts and draws samples).
        oracle: the in-loop oracle the closed loop reads (:mod:`latentsteer.guide`); MNIST:
            the measures and the guide judge.
        reference: ``(m, *sample_shape)`` real test samples for the realism score.
        reference_label: ``(m,)`` their classes (the oracle's class column).
        reference_value: ``(m,)`` their ``match_on`` measure (the domain's), or NaN.
        train_codes: ``(k, d)`` encoded training samples, for the kNN safeguard and scores.
        data_root: where the domain reads test starts from.
        workers: processes for the oracles' measures.
        reference_features: ``(m, f)`` the certifier's features of ``reference``;
            computed here when not given.
        certifier: an oracle whose judge the loop never sees: it certifies class goals and
            gives the realism features. ``None`` uses ``oracle`` (then a guided run's class
            goals are graded by a judge that steered them, and metrics say so).
        reference_data: the data folders this context read (the metrics name them).
        learned: the cards of the model's fitted properties (:mod:`latentsteer.learned`),
            by name: grading reports their oracles' errors and unverifiable samples.
    """

    model: MultiHeadVAE
    oracle: Oracle
    reference: torch.Tensor
    reference_label: np.ndarray
    reference_value: np.ndarray
    train_codes: torch.Tensor
    data_root: str | Path | None = None
    workers: int | None = None
    reference_features: np.ndarray | None = field(default=None, repr=False)
    certifier: Oracle | None = None
    reference_data: str = "none"
    learned: dict[str, PropertyCard] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The certifier's features of the reference, computed once for every realism score
        # unless the `context` stage already did (see the domain's steering context).
        if self.reference_features is None:
            self.reference_features = self.grader.embed(self.reference).cpu().numpy()

    @property
    def grader(self) -> Oracle:
        """The oracle that certifies results: the certifier, else the in-loop oracle."""
        return self.certifier if self.certifier is not None else self.oracle


def safeguards(cfg: ExperimentConfig, ctx: Context) -> list[Safeguard]:
    """All four safeguards with the experiment's weights (weight 0 = measured, not applied)."""
    return [
        PriorPenalty(cfg.prior, cfg.radius),
        KNNDensity(ctx.train_codes, cfg.knn_k, cfg.knn),
        CycleConsistency(cfg.cycle),
        Proximity(cfg.proximity),
    ]
