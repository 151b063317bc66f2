"""The ways to steer a molecule (``ExperimentConfig.method`` of a molecule model; the first is
the default), named from the engine's one vocabulary (:mod:`latentsteer.methods`).

``latent``: the model's heads propose, RDKit checks (:mod:`.proposals`); with ``guide:
false`` the plain ascent with no checks, the counter-example; ``random_search``, ``cmaes``,
``bayesopt``: searches of the model's codes; ``ga``: a genetic algorithm on molecules with no
model; ``dataset``: the best training molecule within the threshold; ``table``: the best
molecule of a fitted property's table within the threshold (a model with fitted
properties).
"""

METHODS = ("latent", "random_search", "cmaes", "bayesopt", "ga", "dataset", "table")
