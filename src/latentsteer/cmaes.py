"""Latent CMA-ES: one covariance-adapting evolution strategy per start (the ``cma`` package).

CMA-ES adapts its step size and search covariance from ranked candidates only, so it is the
strongest general-purpose gradient-free optimiser for a smooth objective in a few dozen
dimensions. One ``cma.CMAEvolutionStrategy`` runs per start, seeded from the start's code,
and all their candidates are evaluated together in one batch per round.
"""

from __future__ import annotations

import numpy as np
import torch


class CMAES:
    """Per-start CMA-ES (a :class:`~latentsteer.blackbox.Strategy`).

    Args:
        start: ``(n, d)`` starting codes (each strategy's initial mean).
        sigma: initial step size, in prior standard deviations.
        population: candidates per start and round (CMA-ES's ``popsize``).
        seed: seeds the strategies (start ``i`` uses ``seed + i + 1``; cma treats 0 as
            "random").

    Raises:
        ImportError: ``cma`` is not installed (``pip install 'latentsteer[baselines]'``).
    """

    def __init__(self, start: torch.Tensor, sigma: float, population: int, seed: int) -> None:
        import cma

        if not sigma > 0 or population < 2:
            raise ValueError("CMA-ES needs sigma > 0 and population >= 2")
        self.strategies = [
            cma.CMAEvolutionStrategy(
                z.tolist(),
                sigma,
                {"popsize": population, "seed": seed + i + 1, "verbose": -9},
            )  # fmt: skip
            for i, z in enumerate(start.detach().cpu().double().numpy())
        ]
        self._asked: list[list[np.ndarray]] = []

    def ask(self) -> torch.Tensor:
        self._asked = [es.ask() for es in self.strategies]
        return torch.tensor(np.array(self._asked), dtype=torch.float32).transpose(0, 1)

    def tell(self, candidates: torch.Tensor, values: torch.Tensor) -> None:
        if not self._asked:  # the start's own evaluation: CMA-ES's mean already is the start
            return
        costs = (-values).double().numpy()  # cma minimises
        for i, es in enumerate(self.strategies):
            es.tell(self._asked[i], costs[:, i].tolist())
        self._asked = []
