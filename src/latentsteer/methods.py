"""The steering methods of the shared engine (:mod:`latentsteer.runner`).

A domain that steers its own way (``Domain.steerer``: molecules) declares its own list in
``Domain.methods``; the CLI offers the union over the known domains and checks a request
against the list of the model's domain.
"""

from __future__ import annotations

from typing import Literal, get_args

# latent: gradient ascent on codes; data_space: on pixels (the counter-example);
# random_search, cmaes, bayesopt: gradient-free baselines on codes (blackbox.py).
EngineMethod = Literal["latent", "data_space", "random_search", "cmaes", "bayesopt"]
ENGINE_METHODS: tuple[str, ...] = get_args(EngineMethod)
