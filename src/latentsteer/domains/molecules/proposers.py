"""The molecule methods: what each one asks RDKit about, one function per method.

Every method of :data:`PROPOSERS` (the molecule domain's ``methods``, in order) gets the same
:class:`Steering` state: the experiment, the starts, the budgeted oracle (every molecule it
measures is a call charged to its start) and the grading against each start. A method only
decides which molecules to ask about; it returns ``None``, and the run picks each start's
best acceptable measured molecule by the engine's rules (:mod:`latentsteer.rounds`,
:mod:`latentsteer.verdicts`). A method that picks its results without measuring
candidates (``dataset``, and the unguarded ascent, the counter-example) returns them.

==================  ===================================================================
``latent``          the heads propose (:mod:`.proposals`), in rounds of the budget ranked
                    by the heads' reading (:func:`latentsteer.rounds.spend_in_rounds`)
``random_search``,  the engine's strategies around each start's inverted code
``cmaes``,          (:func:`.baselines.latent_search`)
``bayesopt``
``ga``              a graph GA with no model (:func:`.baselines.genetic`)
``dataset``         the best training molecule within the threshold
==================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentsteer.domains.molecules.baselines import best_of_dataset, genetic, latent_search
from latentsteer.domains.molecules.calibration import HeadCalibration
from latentsteer.domains.molecules.neighbours import nearest_training, with_neighbours
from latentsteer.domains.molecules.oracle_calls import CountedOracle
from latentsteer.domains.molecules.proposal_settings import ProposalSettings
from latentsteer.domains.molecules.proposals import Proposals, invert, propose
from latentsteer.domains.molecules.similarity import fingerprints, tanimoto
from latentsteer.domains.molecules.starts import MoleculeStarts
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.model import MultiHeadVAE
from latentsteer.rounds import Offer, spend_in_rounds
from latentsteer.verdicts import judge


@dataclass
class Steering:
    """What every method of one experiment shares (see the module docstring).

    Attributes:
        model: the molecule VAE.
        starts: the starting molecules.
        cfg: the experiment.
        spread: property → its spread over the training molecules (the score's units).
        oracle: RDKit behind the budget, per start.
        dataset: the valid training molecules, when at hand.
        dataset_fps: their fingerprints, when computed.
        proposals: the ascent's first round for these starts, when already made.
        calibration: the heads on RDKit's scale, or ``None`` (the raw heads).
        workers: processes for RDKit.
        model_calls: ``(n,)`` what each start spent on the model so far.
        heads_of: result SMILES → the heads' reading of it, where a method recorded one.
        extra: the method's own metrics.
        table_molecules: the fitted properties' table molecules (method ``table``).
    """

    model: MultiHeadVAE
    starts: MoleculeStarts
    cfg: ExperimentConfig
    spread: dict[str, float]
    oracle: CountedOracle
    dataset: pd.DataFrame | None = None
    dataset_fps: list[object] | None = None
    proposals: Proposals | None = None
    calibration: HeadCalibration | None = None
    workers: int | None = None
    model_calls: np.ndarray = field(init=False)
    heads_of: dict[str, dict[str, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    table_molecules: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.model_calls = np.zeros(len(self.starts.smiles), dtype=np.int64)
        self.opts = ProposalSettings.of(self.cfg.proposer)
        self.tol = dict(self.model.domain.tolerances)

    def grade(self, i: int, start_values: pd.DataFrame | None = None):  # noqa: ANN201
        """``(values, sims) -> Verdicts`` of start ``i``'s candidates against
        ``start_values`` (the in-loop oracle's reading of the starts unless given)."""
        reference = self.starts.loop_values if start_values is None else start_values
        return lambda values, sims: judge(
            self.cfg, values, reference.iloc[i], sims, np.zeros(len(sims), dtype=bool),
            self.spread, self.tol,
        )  # fmt: skip


def latent(run: Steering) -> None:
    """The heads propose, RDKit checks: the first round's proposals (with the nearest
    training molecules, when at hand), then proposals again from each start's best
    acceptable molecule so far, each round ranked by the heads and spending its share of
    the budget."""
    model, starts, cfg, n = run.model, run.starts, run.cfg, len(run.starts.smiles)
    first = run.proposals or propose_for(model, starts.tokens, cfg)
    row_of: list[dict[str, torch.Tensor]] = [{} for _ in range(n)]
    opening = first
    start_reads = calibrated(first.start_predicted, run.calibration)  # once, not per round
    if run.dataset is not None and run.opts.neighbours:
        if run.dataset_fps is None:
            run.dataset_fps = fingerprints(run.dataset.canonical.tolist())
        near = nearest_training(model, starts.smiles, fingerprints(starts.smiles), run.dataset,
                                run.dataset_fps, run.opts.neighbours, cfg.similarity)  # fmt: skip
        opening = with_neighbours(first, near)
        run.extra["neighbours"] = float(np.mean([len(m) for m in near[0]]))

    def offers(r: int) -> list[Offer]:
        props = opening
        if r > 0:
            seeds = torch.stack([_best_row(run, i, row_of) for i in range(n)])
            props = propose_for(model, seeds, cfg, cfg.seed + r, starts.smiles)
            np.add(run.model_calls, props.model_calls, out=run.model_calls)
        out = []
        for i in range(n):
            cands = props.smiles[i]
            same = np.array([c == starts.smiles[i] for c in cands], dtype=bool)
            read = calibrated(with_columns(props.predicted[i], cfg.properties), run.calibration)
            out.append(Offer(cands, judge(cfg, read, start_reads.iloc[i], props.similarity[i],
                                          same, run.spread, run.tol)))  # fmt: skip
            run.heads_of.update(zip(cands, read.to_dict("records"), strict=True))
            row_of[i].update(zip(cands, props.rows[i], strict=True))
        return out

    spend_in_rounds(offers, run.oracle, cfg.rounds)
    run.model_calls += first.model_calls
    run.extra["reconstructed"] = float(first.reconstructed.mean())


def unguarded(run: Steering) -> list[str]:
    """The counter-example (``latent`` with ``guide: false``): the plain ascent from the
    encoder's code, its last decoded molecule returned whatever it is; its one oracle call
    per start grades that molecule."""
    from latentsteer.ascent import StopRule, ascend

    model, cfg = run.model, run.cfg
    with torch.no_grad():
        z0 = model.encode(run.starts.tokens)
    path = ascend(model, z0, task_goals(model, cfg), steps=cfg.steps, lr=cfg.lr,
                  readout="code", stop=StopRule(when_satisfied=False, grad_tol=None))  # fmt: skip
    final = path.z[-1].to(model.device)
    with torch.no_grad():
        decoded = model.domain.to_smiles(model.decode(final).cpu())  # type: ignore[attr-defined]
        claims = model.predict(final)
    claimed = pd.DataFrame({h.column: claims[h.name].cpu().numpy() for h in model.config.heads})
    for i, s in enumerate(decoded):
        run.oracle.measure(i, [s])
        run.heads_of[s] = with_columns(claimed.iloc[[i]], cfg.properties).iloc[0].to_dict()
    run.model_calls[:] = cfg.steps + 1
    return [s or run.starts.smiles[i] for i, s in enumerate(decoded)]


def codes_search(run: Steering) -> None:
    """``random_search``, ``cmaes``, ``bayesopt``: the engine's strategy of that name around
    each start's inverted code, every proposal decoded and measured within the budget."""
    codes = (
        run.proposals.codes
        if run.proposals is not None
        else invert(run.model, run.starts.tokens, run.opts.invert_steps)
    )
    run.model_calls[:] = run.opts.invert_steps
    run.model_calls += latent_search(run.model, codes, run.starts.smiles, run.cfg, run.oracle,
                                     run.grade, run.cfg.method)  # fmt: skip


def ga(run: Steering) -> None:
    """A graph GA on the molecules themselves, seeded with each start, no model."""
    genetic(run.starts.smiles, run.cfg, run.oracle, run.grade, workers=run.workers)


def screen(run: Steering, pool: list[str], pool_fps: list[object] | None = None) -> None:
    """Ask the oracle about each start's most similar molecules of ``pool`` within the
    threshold, most similar first, while its budget lasts (screening a known library: the
    run then picks the best acceptable one, as for every measuring method)."""
    fps = pool_fps if pool_fps is not None else fingerprints(pool)
    names = np.asarray(pool, dtype=object)
    requests = {}
    for i, fp in enumerate(fingerprints(run.starts.smiles)):
        sims = tanimoto(fp, fps)
        near = np.flatnonzero((sims >= run.cfg.similarity) & (names != run.starts.smiles[i]))
        order = near[np.argsort(-sims[near], kind="stable")][: run.cfg.budget]
        requests[i] = names[order].tolist()
    run.oracle.measure_many(requests)
    run.extra["pool_molecules"] = len(pool)


def table(run: Steering) -> None:
    """The best molecule of the fitted properties' tables within the threshold, each asked
    about within the budget (their table values are the user's measurements, not the
    oracle's readings, so they are read like any other molecule's).

    Raises:
        ValueError: the model has no fitted property.
    """
    if not run.table_molecules:
        raise ValueError("method table needs a model with a fitted property "
                         "(latentsteer fit-property)")  # fmt: skip
    screen(run, run.table_molecules)


def dataset(run: Steering) -> list[str] | None:
    """The best training molecule within the threshold, from their labels (no RDKit call);
    with a goal on a fitted property, which the training molecules have no labels of, the
    most similar ones are asked about within the budget instead (:func:`screen`).

    Raises:
        ValueError: no training molecules at hand.
    """
    if run.dataset is None:
        raise ValueError("the dataset method needs the training molecules' labels")
    if any(p not in run.dataset.columns for p in run.cfg.properties):
        screen(run, run.dataset.canonical.tolist(), run.dataset_fps)
        return None
    picks = best_of_dataset(run.starts.smiles, run.cfg, run.dataset, run.starts.values,
                            run.spread, run.tol, run.dataset_fps)  # fmt: skip
    run.extra["dataset_molecules"] = len(run.dataset)
    return [run.starts.smiles[i] if k is None else run.dataset.canonical.iloc[k]
            for i, k in enumerate(picks)]  # fmt: skip


#: method name → its proposer (the molecule domain's ``methods``, in this order).
PROPOSERS: dict[str, Callable[[Steering], list[str] | None]] = {
    "latent": latent,
    "random_search": codes_search,
    "cmaes": codes_search,
    "bayesopt": codes_search,
    "ga": ga,
    "dataset": dataset,
    "table": table,
}


def proposer_of(cfg: ExperimentConfig) -> Callable[[Steering], list[str] | None]:
    """The function that serves ``cfg``'s method (``latent`` without its guide: the
    unguarded ascent)."""
    return unguarded if not cfg.guide else PROPOSERS[cfg.method]


def task_goals(model: MultiHeadVAE, cfg: ExperimentConfig) -> list:
    """The experiment's goals bound for the heads, each with its property's tolerance."""
    return [spec.goal(model, tol=model.domain.tolerances[spec.prop]) for spec in cfg.specs]


def propose_for(
    model: MultiHeadVAE, x: torch.Tensor, cfg: ExperimentConfig, seed: int | None = None,
    reference: list[str] | None = None,
) -> Proposals:  # fmt: skip
    """:func:`~.proposals.propose` with ``cfg``'s goals and settings: what the ascent's
    first round proposes from the token rows ``x (n, L)`` (pass the result to
    :func:`~.steering.steer_molecules` to grade one proposal at several thresholds).
    ``seed`` defaults to the experiment's."""
    opts = ProposalSettings.of(cfg.proposer)
    return propose(
        model, x, task_goals(model, cfg), steps=cfg.steps, replicas=opts.replicas, lr=cfg.lr,
        token_samples=opts.token_samples, temperature=opts.temperature,
        invert_steps=opts.invert_steps, noise=opts.noise,
        seed=cfg.seed if seed is None else seed, edits=opts.edits, reference=reference,
    )  # fmt: skip


def _best_row(run: Steering, i: int, row_of: list[dict]) -> torch.Tensor:
    """The token row of start ``i``'s best acceptable molecule so far, or of the start."""
    asked = [s for s in run.oracle.asked[i] if s in row_of[i]]
    if asked:
        sims = tanimoto(fingerprints([run.starts.smiles[i]])[0], fingerprints(asked))
        best = run.grade(i)(run.oracle.lookup(asked), sims).best()
        if best is not None:
            return row_of[i][asked[best]]
    return run.starts.tokens[i].cpu()


def with_columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with every one of ``columns`` (NaN where the heads read no such property)."""
    out = frame.reset_index(drop=True).copy()
    for c in columns:
        if c not in out:
            out[c] = np.nan
    return out


def calibrated(frame: pd.DataFrame, calibration: HeadCalibration | None) -> pd.DataFrame:
    """The heads' reading ``frame`` on RDKit's scale (unchanged without a calibration)."""
    return frame if calibration is None else calibration.apply(frame)
