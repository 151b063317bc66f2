"""The ways to steer a molecule (``MoleculeTask.method``; the first is the default).

``ascent``: the model's heads propose, RDKit checks (:mod:`.proposals`); ``random``,
``cmaes``, ``bayesopt``: searches of the model's codes; ``ga``: a genetic algorithm on
molecules with no model; ``dataset``: the best training molecule within the threshold;
``unguarded``: plain ascent with no checks, the counter-example.
"""

METHODS = ("ascent", "random", "cmaes", "bayesopt", "ga", "dataset", "unguarded")
