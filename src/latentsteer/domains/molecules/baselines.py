"""What latent ascent on molecules is compared with, on the same starts and oracle budget.

Each baseline only decides *which molecules to ask RDKit about* for each start; the result
of every method is then chosen by the same rule from what it asked
(:mod:`latentsteer.verdicts`), so the methods differ in their proposals alone.

* :func:`latent_search` — random search, CMA-ES or Bayesian optimisation in the latent
  space around the same starting codes the ascent uses (the inverted codes of
  :mod:`.proposals`), scored by RDKit on the decoded molecule: the gradient-free kinds of
  the shared engine (:class:`~latentsteer.random_search.RandomSearch`,
  :class:`~latentsteer.cmaes.CMAES`, :class:`~latentsteer.bayesopt.BayesOpt`).
* :func:`genetic` — a graph genetic algorithm with no model at all (``mol_ga``, Tripp et al.
  2023), seeded with the start alone.
* :func:`best_of_dataset` — the best training molecule within the similarity threshold: the
  honest "best of the data". It reads the labels the ``molecules_labels`` stage measured and
  spends no oracle call (its budget is the whole training set, reported beside it).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from latentsteer.domains.molecules.measures import RDKIT, MoleculeMeasures
from latentsteer.domains.molecules.oracle_calls import CountedOracle
from latentsteer.domains.molecules.similarity import fingerprints, tanimoto
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.model import MultiHeadVAE
from latentsteer.verdicts import judge

#: Value given to a dissimilar proposal: below any similar one, and higher the closer it is,
#: so a search that strays can find its way back.
FAR = -10.0


def _values(
    cfg: ExperimentConfig, i: int, smiles: list[str], start: str, start_fp: object,
    oracle: CountedOracle, grade: Callable[..., object],
) -> np.ndarray:  # fmt: skip
    """Search values of start ``i``'s proposals: RDKit's score where similar enough (a call
    each, while the budget lasts), else ``FAR`` minus the missing similarity."""
    sims = tanimoto(start_fp, fingerprints(smiles))
    same = np.array([s == start for s in smiles], dtype=bool)
    ok = (sims >= cfg.similarity) & ~same
    values = FAR - 10.0 * np.maximum(cfg.similarity - sims, 0.0) - same
    if ok.any():
        measured = oracle.measure(i, [s for s, k in zip(smiles, ok, strict=True) if k])
        score = grade(measured, sims[ok]).score  # type: ignore[attr-defined]
        values[ok] = np.where(np.isfinite(score), score, FAR)  # NaN rows: over budget
    return values


def latent_search(
    model: MultiHeadVAE,
    codes: torch.Tensor,
    starts: list[str],
    cfg: ExperimentConfig,
    oracle: CountedOracle,
    grade: Callable[[int], Callable[[pd.DataFrame, np.ndarray], object]],
    kind: str,
) -> np.ndarray:
    """Ask RDKit about decoded codes proposed by random search, CMA-ES or Bayesian
    optimisation around ``codes``.

    Args:
        codes: ``(n, d)`` starting codes (the ascent's, after inversion).
        starts: the starts' canonical SMILES.
        grade: start index → a function of ``(measured values, similarities)`` giving
            :class:`~latentsteer.verdicts.Verdicts`.
        kind: ``random_search``, ``cmaes`` or ``bayesopt``.

    Returns:
        ``(n,)`` model calls (decodes) per start.
    """
    if kind == "bayesopt":
        from latentsteer.bayesopt import BayesOpt

        # Cheaper than the engine's defaults, measured on the first 40 starts of each cfg
        # (docs/molecules.md): success as good within noise, about half the time.
        strategy = BayesOpt(codes.cpu(), cfg.box, cfg.init, cfg.population, cfg.seed,
                            raw_samples=64, restarts=1, mc_samples=64, fit_iterations=30,
                            warm_start=True)  # fmt: skip
    else:
        from latentsteer.cmaes import CMAES
        from latentsteer.random_search import RandomSearch

        make = {"random_search": RandomSearch, "cmaes": CMAES}[kind]
        strategy = make(codes.cpu(), cfg.sigma, cfg.population, cfg.seed)
    start_fps = fingerprints(starts)
    n = len(starts)
    calls = np.zeros(n, dtype=np.int64)
    # Rounds stop once every start has spent its budget, or after three budgets' worth of
    # proposals (a search stuck on molecules it already asked about spends nothing).
    for _ in range(math.ceil(3 * cfg.budget / cfg.population)):
        active = [i for i in range(n) if oracle.left(i) > 0]
        if not active:
            break
        candidates = strategy.ask()  # (m, n, d)
        m = candidates.shape[0]
        with torch.no_grad():
            tokens = model.decode(candidates.reshape(m * n, -1).to(model.device)).cpu()
        smiles = np.array(model.domain.to_smiles(tokens), dtype=object).reshape(m, n)
        values = torch.full((m, n), FAR)
        for i in active:
            calls[i] += m
            v = _values(cfg, i, list(smiles[:, i]), starts[i], start_fps[i], oracle, grade(i))
            values[:, i] = torch.as_tensor(v, dtype=torch.float32)
        strategy.tell(candidates, values)
    return calls


def genetic(
    starts: list[str],
    cfg: ExperimentConfig,
    oracle: CountedOracle,
    grade: Callable[[int], Callable[[pd.DataFrame, np.ndarray], object]],
    offspring: int = 20,
    workers: int | None = None,
) -> None:
    """Ask RDKit about the molecules a graph GA (``mol_ga``) breeds from each start alone.

    The GA maximises the same score the results are chosen by; a molecule below the
    similarity threshold is scored ``FAR`` without a call. Generations stop at three
    budgets' worth of offspring; the budget caps the calls. The starts are shared out over
    ``workers`` processes (joblib's loky pool; ``None``: one per core), each start's GA
    seeded by its index, so the result does not depend on the number of workers.
    """
    from joblib import Parallel, delayed

    n_jobs = min(workers or (os.cpu_count() or 1), len(starts))
    shares = [
        [int(i) for i in c]
        for c in np.array_split(np.arange(len(starts)), max(n_jobs, 1))
        if len(c)
    ]
    if n_jobs <= 1:
        only = shares[0]
        parts = [_breed(starts, only, cfg, oracle.budget, grade, offspring, oracle.cache,
                        oracle.measures)]  # fmt: skip
    else:
        run = Parallel(n_jobs=n_jobs, backend="loky")
        parts = run(delayed(_breed)(starts, share, cfg, oracle.budget, grade, offspring, {},
                                    oracle.measures)
                    for share in shares)  # fmt: skip
    for share, (asked, cache) in zip(shares, parts, strict=True):
        oracle.cache.update(cache)
        for i, molecules in zip(share, asked, strict=True):
            oracle.asked[i] = molecules
            oracle.calls[i] = len(molecules)


def _breed(
    starts: list[str], share: list[int], cfg: ExperimentConfig, budget: int,
    grade: Callable[[int], Callable[[pd.DataFrame, np.ndarray], object]], offspring: int,
    cache: dict[str, dict[str, float]], measures: MoleculeMeasures = RDKIT,
) -> tuple[list[dict[str, None]], dict[str, dict[str, float]]]:  # fmt: skip
    """Run the GA of each start in ``share``; return what each asked about, and the measures
    (``measures``: what the run's oracle reads, the fitted properties' guides included)."""
    from mol_ga import default_ga

    oracle = CountedOracle(budget, len(starts), cache, workers=1, measures=measures)
    start_fps = fingerprints(starts)
    for i in share:

        def score(smiles: list[str], i: int = i) -> list[float]:
            return _values(cfg, i, smiles, starts[i], start_fps[i], oracle, grade(i)).tolist()

        default_ga(
            starting_population_smiles=[starts[i]], scoring_function=score,
            max_generations=math.ceil(3 * cfg.budget / offspring), offspring_size=offspring,
            population_size=100, rng=random.Random(cfg.seed + i),
        )  # fmt: skip
    return [oracle.asked[i] for i in share], oracle.cache


def best_of_dataset(
    starts: list[str],
    cfg: ExperimentConfig,
    dataset: pd.DataFrame,
    start_values: pd.DataFrame,
    spread: Mapping[str, float],
    tolerance: Mapping[str, float],
    dataset_fps: list[object] | None = None,
) -> list[int | None]:
    """For each start, the row of ``dataset`` (``canonical`` and the properties) a method
    choosing among training molecules would return, or ``None``."""
    fps = dataset_fps if dataset_fps is not None else fingerprints(dataset.canonical.tolist())
    names = dataset.canonical.to_numpy()
    out: list[int | None] = []
    for i, (start, fp) in enumerate(zip(starts, fingerprints(starts), strict=True)):
        sims = tanimoto(fp, fps)
        near = np.flatnonzero(sims >= cfg.similarity)
        verdict = judge(cfg, dataset.iloc[near].reset_index(drop=True), start_values.iloc[i],
                        sims[near], names[near] == start, spread, tolerance)  # fmt: skip
        best = verdict.best()
        out.append(None if best is None else int(near[best]))
    return out
