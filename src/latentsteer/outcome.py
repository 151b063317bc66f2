"""What every steering run returns, in every domain: the one result interface of
:func:`latentsteer.steer`.

An MNIST run's :class:`~latentsteer.results.Outcome` and a molecule run's
:class:`~latentsteer.domains.molecules.steering.MoleculeOutcome` both hold it; each adds what
its samples need (decoded frames; a table of molecules).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class SteerOutcome(Protocol):
    """A finished run.

    Attributes:
        metrics: the run's ``metrics.json``: the common keys of
            :mod:`latentsteer.metrics_schema`, then the domain's own.
        per_sample: ``(n,)`` arrays, one entry per start in input order, at least
            ``success`` (the certifying oracles' verdict), ``predicted_success`` (the
            heads'), ``oracle_calls`` and ``model_calls``.
    """

    metrics: dict[str, Any]

    @property
    def per_sample(self) -> dict[str, np.ndarray]: ...
