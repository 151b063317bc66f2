"""The one vocabulary of steering methods, for every domain.

Each domain declares which of these its models take (``Domain.methods``; the first is its
default); the CLI and ``params.yaml`` accept exactly those, and ``metrics.json`` records the
name. The engine's runner (:mod:`latentsteer.runner`) moves codes along trajectories for
:data:`ENGINE_METHODS`; a domain whose context proposes samples of its own (molecules)
serves its list with the engine's rules, verdicts, rounds and budgeted oracles.
"""

from __future__ import annotations

#: name -> what it does
VOCABULARY: dict[str, str] = {
    "latent": "gradient ascent on the codes, read by the heads (closed loop unless guide: false)",
    "random_search": "random search of the codes around each start",
    "cmaes": "CMA-ES on the codes around each start",
    "bayesopt": "Bayesian optimisation of the codes in a box around each start",
    "data_space": "gradient ascent on the samples themselves (the counter-example)",
    "ga": "a genetic algorithm on the samples, with no model",
    "dataset": "the best training sample within the constraints",
    "table": "the best sample of a fitted property's own table within the constraints",
}

#: The methods the engine's trajectories serve (runner.py): latent: gradient ascent on codes;
#: data_space: on the samples (the counter-example); random_search, cmaes, bayesopt:
#: gradient-free searches of codes (blackbox.py).
ENGINE_METHODS: tuple[str, ...] = ("latent", "data_space", "random_search", "cmaes", "bayesopt")
