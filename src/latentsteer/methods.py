"""The one vocabulary of steering methods, for every domain.

Each domain declares which of these its models take (``Domain.methods``; the first is its
default); the CLI and ``params.yaml`` accept exactly those, and ``metrics.json`` records the
name. The engine's runner (:mod:`latentsteer.runner`) serves :data:`ENGINE_METHODS`; a
domain with requests of its own (``Domain.steerer``: molecules) serves its list with the
engine's rules, verdicts and budgeted oracles.
"""

from __future__ import annotations

from typing import Literal, get_args

#: name -> what it does
VOCABULARY: dict[str, str] = {
    "latent": "gradient ascent on the codes, read by the heads (closed loop unless guide: false)",
    "random_search": "random search of the codes around each start",
    "cmaes": "CMA-ES on the codes around each start",
    "bayesopt": "Bayesian optimisation of the codes in a box around each start",
    "data_space": "gradient ascent on the samples themselves (the counter-example)",
    "ga": "a genetic algorithm on the samples, with no model",
    "dataset": "the best training sample within the constraints",
}

# latent: gradient ascent on codes; data_space: on pixels (the counter-example);
# random_search, cmaes, bayesopt: gradient-free baselines on codes (blackbox.py).
EngineMethod = Literal["latent", "data_space", "random_search", "cmaes", "bayesopt"]
ENGINE_METHODS: tuple[str, ...] = get_args(EngineMethod)
