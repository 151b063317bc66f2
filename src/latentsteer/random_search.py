"""Latent random search: the simplest gradient-free baseline.

Each round draws ``population`` codes per start from an isotropic Gaussian around that
start, ``z0 + sigma · ε``; :func:`~latentsteer.blackbox.blackbox_search` keeps the best.
Nothing adapts, so it shows what the objective gives without any search intelligence.
"""

from __future__ import annotations

import torch


class RandomSearch:
    """Isotropic Gaussian proposals around each start (a :class:`~latentsteer.blackbox.Strategy`).

    Args:
        start: ``(n, d)`` starting codes.
        sigma: spread of the proposals, in prior standard deviations.
        population: candidates per start and round.
        seed: seeds the proposals.
    """

    def __init__(self, start: torch.Tensor, sigma: float, population: int, seed: int) -> None:
        if not sigma > 0 or population < 1:
            raise ValueError("random search needs sigma > 0 and population >= 1")
        self.start = start.detach().cpu().float()
        self.sigma, self.population = sigma, population
        self.generator = torch.Generator().manual_seed(seed)

    def ask(self) -> torch.Tensor:
        noise = torch.randn(self.population, *self.start.shape, generator=self.generator)
        return self.start + self.sigma * noise  # (m, n, d)

    def tell(self, candidates: torch.Tensor, values: torch.Tensor) -> None:
        """Nothing to learn: the caller keeps the incumbent, proposals never adapt."""
