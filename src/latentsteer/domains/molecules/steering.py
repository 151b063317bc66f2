"""Steer molecules: one cfg, one method, every start; RDKit certifies each result.

:func:`steer_molecules` runs one experiment (an engine
:class:`~latentsteer.experiment_config.ExperimentConfig`) on :class:`MoleculeStarts`:

* the method decides which molecules to ask RDKit about for each start, within the cfg's
  oracle budget (the engine's :mod:`latentsteer.budget`): latent ascent proposes in rounds
  (:mod:`.proposals`, the engine's :mod:`latentsteer.rounds` ranking them by the heads'
  reading), the baselines propose their own way (:mod:`.baselines`);
* every method's result is the best *acceptable* molecule it asked about, by the engine's
  rules (:mod:`latentsteer.verdicts`), or the start itself when there is none;
* each result is then measured again by RDKit from its written SMILES, and graded next to
  the heads' reading of it (their success, and the gap between the two).

``guide=False`` (the unguarded ascent) is the counter-example: the plain ascent from the
encoder's code, its last decoded molecule returned whatever it is; the heads' claims sit next
to RDKit's measures.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentsteer.domains.molecules.baselines import best_of_dataset, genetic, latent_search
from latentsteer.domains.molecules.calibration import HeadCalibration
from latentsteer.domains.molecules.neighbours import nearest_training, with_neighbours
from latentsteer.domains.molecules.oracle_calls import CountedOracle
from latentsteer.domains.molecules.properties import COLUMNS, measure_molecules
from latentsteer.domains.molecules.proposal_settings import ProposalSettings
from latentsteer.domains.molecules.proposals import Proposals, invert, propose, read_rows
from latentsteer.domains.molecules.similarity import fingerprints, tanimoto
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.model import MultiHeadVAE
from latentsteer.rounds import Offer, select_measured, spend_in_rounds
from latentsteer.verdicts import Verdicts, judge, judge_table

CERTIFIED_BY = "RDKit, recomputed from each result's SMILES"


def labels_read(folder: str | os.PathLike[str] | None) -> str:
    """``reference_data`` of a run that read the labels ``folder`` (``None``: none read)."""
    return "none" if folder is None else f"training and validation molecules of {folder}"


def in_loop_oracles(cfg: ExperimentConfig) -> str:
    """What a method consults while it steers: RDKit within the budget, the training
    molecules' RDKit labels (``dataset``), or nothing (the unguarded ascent)."""
    if not cfg.guide:
        return "none"
    if cfg.method == "dataset":
        return "RDKit labels of the training molecules"
    return f"RDKit, counted (at most {cfg.budget} molecules a start)"


@dataclass
class MoleculeStarts:
    """Starting molecules.

    Attributes:
        inputs: the SMILES as given (what ``molecules.csv`` calls ``start``).
        smiles: their canonical SMILES.
        tokens: ``(n, L)`` their token rows in the model's vocabulary.
        values: RDKit's measures of each, one row per start (``properties.COLUMNS``).
    """

    inputs: list[str]
    smiles: list[str]
    tokens: torch.Tensor
    values: pd.DataFrame

    def first(self, k: int) -> MoleculeStarts:
        """The first ``k`` starts."""
        return MoleculeStarts(self.inputs[:k], self.smiles[:k], self.tokens[:k],
                              self.values.iloc[:k].reset_index(drop=True))  # fmt: skip


def read_starts(
    model: MultiHeadVAE, smiles: list[str], names: list[str] | None = None
) -> MoleculeStarts:
    """Starts from SMILES; a molecule the model cannot read is one error naming it.

    Raises:
        ValueError: no molecules, or one that does not parse, is several fragments, has a
            token outside the vocabulary or is too long (``names`` say which).
    """
    if not smiles:
        raise ValueError("no starting molecules given")
    tokens = model.domain.encode_smiles(smiles, names)  # type: ignore[attr-defined]
    values = measure_molecules(list(smiles), workers=1, progress=False)
    return MoleculeStarts(list(smiles), values.canonical.tolist(), tokens,
                          values[list(COLUMNS)].reset_index(drop=True))  # fmt: skip


def property_spreads(model: MultiHeadVAE, properties: list[str]) -> dict[str, float]:
    """Each property's spread over the training molecules, as the heads recorded it when
    trained (their targets' standard deviations): the units of the score that ranks
    results. A property no head predicts gets ten of its tolerances (the tolerances are
    about a tenth of each spread)."""
    out = {}
    for p in properties:
        heads = [i for i, h in enumerate(model.config.heads) if h.column == p]
        if heads:
            out[p] = float(model.target_std[heads[0]])
        else:
            out[p] = 10 * model.domain.tolerances[p]
    return out


@dataclass
class MoleculeOutcome:
    """What one cfg and method gave.

    Attributes:
        config: the experiment.
        table: one row per start, in input order: ``start``, ``smiles`` (the result; the
            start itself when nothing acceptable was found), ``start_<p>`` and ``<p>`` for
            every measured property, ``similarity``, ``success`` (RDKit's verdict),
            ``changed`` (another molecule than the start), ``heads_success`` (the heads'
            verdict on the same result; empty where they cannot read it), ``oracle_calls``
            and ``model_calls``.
        metrics: the summary (see :func:`summarise`).
        paths: per start, the molecules that improved its best acceptable result in the
            order the method found them (for the grid).
        verdicts: RDKit's verdicts on the results, one row per start.
    """

    config: ExperimentConfig
    table: pd.DataFrame
    metrics: dict[str, Any]
    paths: list[list[str]] = field(default_factory=list)
    verdicts: Verdicts | None = None

    @property
    def per_sample(self) -> dict[str, np.ndarray]:
        """``(n,)`` per start, as every domain's outcome gives them
        (:class:`latentsteer.outcome.SteerOutcome`): ``success`` (RDKit's verdict),
        ``predicted_success`` (the heads'; False where they cannot read the result),
        ``oracle_calls``, ``model_calls`` and ``changed``."""
        t = self.table
        return {
            "success": t.success.to_numpy(dtype=bool),
            "predicted_success": t.heads_success.fillna(False).to_numpy(dtype=bool),
            "oracle_calls": t.oracle_calls.to_numpy(),
            "model_calls": t.model_calls.to_numpy(),
            "changed": t.changed.to_numpy(dtype=bool),
        }

    def first(self, k: int, dataset: pd.DataFrame | None = None) -> MoleculeOutcome:
        """The outcome of the first ``k`` starts alone, summarised afresh.

        Every start is steered on its own (its own candidates, budget and verdict), so these
        rows are what the method gave those starts; reading them off a larger run spares
        running it again on the subset. They are the same method on the same starts, not
        the bytes a run on those starts alone would give: the ascent's random draws are
        taken batch-wide. The starts ran together, so the wall time is their share of the
        run (``k / n``), not what a run of ``k`` starts would cost; ``sliced_from`` says so.

        Args:
            dataset: the training molecules (``canonical``), to count the results they hold
                (``from_training``), as the full run did.
        """
        if self.verdicts is None:
            raise ValueError("this outcome kept no verdicts to slice")
        n = len(self.table)
        k = min(k, n)
        verdicts = Verdicts(*(getattr(self.verdicts, f.name)[:k] for f in fields(Verdicts)))
        table = self.table.head(k).reset_index(drop=True)
        wall = self.metrics["wall_s"] * k / n
        metrics = summarise(self.config, table, verdicts, wall, self.metrics["reference_data"])
        # Means over all the run's starts (neighbours offered, starts reconstructed) do not
        # carry; the constant does, and what the table alone gives is computed again.
        metrics["heads_calibrated_on"] = self.metrics.get("heads_calibrated_on", 0)
        metrics.update(_from_training(table, dataset))
        metrics["sliced_from"] = n
        return MoleculeOutcome(self.config, table, metrics, self.paths[:k], verdicts)

    def write(self, out: str | os.PathLike[str]) -> None:
        """``molecules.csv``, ``metrics.json`` and ``grid.png`` in the folder ``out``
        (:func:`write_outcome`)."""
        write_outcome(self, out)


def steer_molecules(
    model: MultiHeadVAE,
    starts: MoleculeStarts,
    cfg: ExperimentConfig,
    spread: dict[str, float],
    *,
    dataset: pd.DataFrame | None = None,
    dataset_fps: list[object] | None = None,
    cache: dict[str, dict[str, float]] | None = None,
    workers: int | None = None,
    proposals: Proposals | None = None,
    calibration: HeadCalibration | None = None,
    reference: str = "none",
) -> MoleculeOutcome:
    """Run ``cfg`` from every start with ``cfg.method`` (see the module docstring).

    Args:
        spread: property → its standard deviation over the training molecules (the units
            of the score that ranks acceptable results).
        dataset: training molecules (``canonical``, ``selfies`` and the properties), for
            the ``dataset`` baseline and the ascent's nearest-neighbour candidates
            (:mod:`.neighbours`; without it the ascent proposes from the model alone).
        dataset_fps: their fingerprints, when already computed.
        cache: RDKit measures shared between methods (never changes what one is charged).
        workers: processes for RDKit.
        proposals: the ascent's first-round candidates for these starts and goals, when
            already made (a cfg graded at several thresholds proposes its first round
            once); their inverted codes also start ``random`` and ``cmaes``.
        calibration: puts the heads' readings on RDKit's scale (:mod:`.calibration`)
            wherever they are read as values: ranking the ascent's candidates and the
            heads' verdict on every result. The unguarded ascent reports the raw heads.
        reference: the data read besides the starts (the labels folder of ``dataset``
            and ``calibration``), named in the metrics.

    Raises:
        ValueError: a goal on a property the heads do not predict (ascent methods), or the
            ``dataset`` method without a dataset.
    """
    began = time.perf_counter()
    domain = model.domain
    opts = ProposalSettings.of(cfg.proposer)
    tol = dict(domain.tolerances)
    n = len(starts.smiles)
    oracle = CountedOracle(cfg.budget, n, cache, workers)

    def grade(i: int, start_values: pd.DataFrame = starts.values):
        """Grade start ``i``'s candidates against ``start_values`` (RDKit's unless given)."""
        return lambda measured, sims: judge(
            cfg, measured, start_values.iloc[i], sims, np.zeros(len(sims), dtype=bool),
            spread, tol,
        )  # fmt: skip

    model_calls = np.zeros(n, dtype=np.int64)
    extra: dict[str, Any] = {}
    heads_of: dict[str, dict[str, float]] = {}  # result SMILES -> the heads' reading
    results: list[str] = []
    paths: list[list[str]] = [[] for _ in range(n)]
    ascent, unguarded = cfg.method == "latent" and cfg.guide, not cfg.guide
    if unguarded:
        goals = task_goals(model, cfg)
    if ascent:
        first = proposals or propose_for(model, starts.tokens, cfg)
        row_of: list[dict[str, torch.Tensor]] = [{} for _ in range(n)]
        opening = first
        start_reads = _calibrated(first.start_predicted, calibration)  # once, not per round
        if dataset is not None and opts.neighbours:
            if dataset_fps is None:
                dataset_fps = fingerprints(dataset.canonical.tolist())
            near = nearest_training(model, starts.smiles, fingerprints(starts.smiles),
                                    dataset, dataset_fps, opts.neighbours,
                                    cfg.similarity)  # fmt: skip
            opening = with_neighbours(first, near)
            extra["neighbours"] = float(np.mean([len(m) for m in near[0]]))

        def offers(r: int) -> list[Offer]:
            """Round ``r``'s candidates, read by the heads: the opening proposals, then
            proposals again from each start's best acceptable molecule so far."""
            props = opening
            if r > 0:
                seeds = torch.stack([_best_row(i, starts, oracle, grade, row_of) for i in range(n)])
                props = propose_for(model, seeds, cfg, cfg.seed + r, starts.smiles)
                np.add(model_calls, props.model_calls, out=model_calls)
            out = []
            for i in range(n):
                cands = props.smiles[i]
                same = np.array([c == starts.smiles[i] for c in cands], dtype=bool)
                predicted = _calibrated(_with_columns(props.predicted[i], cfg.properties),
                                        calibration)  # fmt: skip
                out.append(Offer(cands, judge(cfg, predicted, start_reads.iloc[i],
                                              props.similarity[i], same, spread, tol)))  # fmt: skip
                heads_of.update(zip(cands, predicted.to_dict("records"), strict=True))
                row_of[i].update(zip(cands, props.rows[i], strict=True))
            return out

        spend_in_rounds(offers, oracle, cfg.rounds)
        model_calls += first.model_calls
        extra["reconstructed"] = float(first.reconstructed.mean())
    elif unguarded:
        with torch.no_grad():
            z0 = model.encode(starts.tokens)
        from latentsteer.ascent import StopRule, ascend

        run = ascend(model, z0, goals, steps=cfg.steps, lr=cfg.lr, readout="code",
                     stop=StopRule(when_satisfied=False, grad_tol=None))  # fmt: skip
        final = run.z[-1].to(model.device)
        with torch.no_grad():
            decoded = domain.to_smiles(model.decode(final).cpu())  # type: ignore[attr-defined]
            claims = model.predict(final)
        claimed = pd.DataFrame({h.column: claims[h.name].cpu().numpy()
                                for h in model.config.heads})  # fmt: skip
        for i, s in enumerate(decoded):
            oracle.measure(i, [s])  # the one call: grading the molecule it returns
            heads_of[s] = _with_columns(claimed.iloc[[i]], cfg.properties).iloc[0].to_dict()
        results = [s or starts.smiles[i] for i, s in enumerate(decoded)]
        model_calls[:] = cfg.steps + 1
    elif cfg.method in ("random_search", "cmaes", "bayesopt"):
        codes = (
            proposals.codes
            if proposals is not None
            else invert(model, starts.tokens, opts.invert_steps)
        )
        kind = cfg.method
        model_calls[:] = opts.invert_steps
        model_calls += latent_search(model, codes, starts.smiles, cfg, oracle, grade, kind)
    elif cfg.method == "ga":
        genetic(starts.smiles, cfg, oracle, grade, workers=workers)
    elif cfg.method == "dataset":
        if dataset is None:
            raise ValueError("the dataset method needs the training molecules' labels")
        picks = best_of_dataset(starts.smiles, cfg, dataset, starts.values, spread, tol,
                                dataset_fps)  # fmt: skip
        results = [starts.smiles[i] if k is None else dataset.canonical.iloc[k]
                   for i, k in enumerate(picks)]  # fmt: skip
        extra["dataset_molecules"] = len(dataset)

    if not results:  # the best acceptable molecule each method asked about
        similarity: dict[int, np.ndarray] = {}

        def sims(i: int, asked: list[str]) -> np.ndarray:
            if i not in similarity:
                similarity[i] = tanimoto(fingerprints([starts.smiles[i]])[0], fingerprints(asked))
            return similarity[i]

        agree = None
        if heads_of:
            # Where the method recorded the heads' reading of its candidates (the ascent),
            # they are graded as `_certify` grades the result by the heads.
            heads_start = _heads_reading(model, starts.smiles, {}, cfg.properties, calibration)

            def agree(i: int, asked: list[str]) -> np.ndarray:
                read = _heads_reading(model, asked, heads_of, cfg.properties, calibration)
                return grade(i, heads_start)(read, sims(i, asked)).success

        chosen = select_measured(
            oracle, lambda i, asked: grade(i)(oracle.lookup(asked), sims(i, asked)), agree
        )
        results = [starts.smiles[i] if b is None else b for i, b in enumerate(chosen.best)]
        paths = chosen.paths
    cal = None if unguarded else calibration
    table, verdicts = _certify(model, starts, cfg, results, heads_of, spread, tol, cal)
    table["oracle_calls"] = oracle.calls
    table["model_calls"] = model_calls
    wall = time.perf_counter() - began
    if proposals is not None and ascent:
        wall += proposals.wall_seconds  # made once for several thresholds: each pays it
    metrics = summarise(cfg, table, verdicts, wall, reference)
    metrics.update(extra)
    # how many held-out molecules set the heads' scale (0: the raw heads)
    metrics["heads_calibrated_on"] = 0 if cal is None else cal.molecules
    metrics.update(_from_training(table, dataset))
    if unguarded:
        for p in cfg.properties:
            if f"predicted_{p}" in table:
                metrics[f"predicted_{p}"] = float(table[f"predicted_{p}"].mean())
                metrics[f"measured_{p}"] = float(table[p].mean())
    return MoleculeOutcome(cfg, table, metrics, paths, verdicts)


def _from_training(table: pd.DataFrame, dataset: pd.DataFrame | None) -> dict[str, float]:
    """``from_training``: the share of changed results the training molecules already held
    (nothing without the training molecules or a changed result)."""
    if dataset is None or not table.changed.any():
        return {}
    known = set(dataset.canonical)
    return {"from_training": float(table.smiles[table.changed].isin(known).mean())}


def task_goals(model: MultiHeadVAE, cfg: ExperimentConfig) -> list:
    """The cfg's goals bound for the heads, each with its property's tolerance."""
    return [spec.goal(model, tol=model.domain.tolerances[spec.prop]) for spec in cfg.specs]


def propose_for(
    model: MultiHeadVAE, x: torch.Tensor, cfg: ExperimentConfig, seed: int | None = None,
    reference: list[str] | None = None,
) -> Proposals:  # fmt: skip
    """:func:`~.proposals.propose` with ``cfg``'s goals and settings: what the ascent's
    first round proposes from the token rows ``x (n, L)`` (pass the result to
    :func:`steer_molecules` to grade one proposal at several thresholds). ``seed``
    defaults to the cfg's."""
    goals = task_goals(model, cfg)
    seed = cfg.seed if seed is None else seed
    opts = ProposalSettings.of(cfg.proposer)
    return propose(
        model, x, goals, steps=cfg.steps, replicas=opts.replicas, lr=cfg.lr,
        token_samples=opts.token_samples, temperature=opts.temperature,
        invert_steps=opts.invert_steps, noise=opts.noise, seed=seed, edits=opts.edits,
        reference=reference,
    )  # fmt: skip


def _best_row(
    i: int, starts: MoleculeStarts, oracle: CountedOracle, grade, row_of: list[dict]
) -> torch.Tensor:  # fmt: skip
    """The token row of start ``i``'s best acceptable molecule so far, or of the start."""
    asked = [s for s in oracle.asked[i] if s in row_of[i]]
    if asked:
        sims = tanimoto(fingerprints([starts.smiles[i]])[0], fingerprints(asked))
        best = grade(i)(oracle.lookup(asked), sims).best()
        if best is not None:
            return row_of[i][asked[best]]
    return starts.tokens[i].cpu()


def _with_columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with every one of ``columns`` (NaN where the heads read no such property)."""
    out = frame.reset_index(drop=True).copy()
    for c in columns:
        if c not in out:
            out[c] = np.nan
    return out


def _calibrated(frame: pd.DataFrame, calibration: HeadCalibration | None) -> pd.DataFrame:
    return frame if calibration is None else calibration.apply(frame)


def _heads_reading(
    model: MultiHeadVAE, smiles: list[str], given: dict[str, dict[str, float]],
    properties: list[str], calibration: HeadCalibration | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The heads' reading of each molecule: ``given`` where the method recorded it, else at
    the encoder's code of its tokens; NaN rows for molecules the vocabulary cannot write."""
    import selfies as sf

    vocab = model.domain.vocabulary  # type: ignore[attr-defined]
    rows: list[dict[str, float]] = [{} for _ in smiles]
    todo = []
    for k, s in enumerate(smiles):
        if s in given:
            rows[k] = given[s]
            continue
        try:
            encoded = sf.encoder(s) if s else ""
        except sf.EncoderError:
            encoded = ""
        if encoded and vocab.fits([encoded])[0]:
            todo.append((k, encoded))
    if todo:
        tokens = torch.as_tensor(vocab.encode([e for _, e in todo]), dtype=torch.float32)
        read = _calibrated(read_rows(model, tokens.to(model.device)), calibration)
        read = read.to_dict("records")
        for (k, _), r in zip(todo, read, strict=True):
            rows[k] = r
    return _with_columns(pd.DataFrame(rows, index=range(len(smiles))), properties)


def _certify(
    model: MultiHeadVAE, starts: MoleculeStarts, cfg: ExperimentConfig, results: list[str],
    heads_of: dict[str, dict[str, float]], spread: dict[str, float], tol: dict[str, float],
    calibration: HeadCalibration | None = None,
) -> tuple[pd.DataFrame, Verdicts]:  # fmt: skip
    """Measure every result afresh and grade it by RDKit (the verdicts returned) and by the
    heads (the table's ``heads_success``)."""
    measured = measure_molecules(results, workers=1, progress=False)
    values = measured[list(COLUMNS)].reset_index(drop=True)
    canonical = [c if isinstance(c, str) else s for c, s in zip(measured.canonical, results,
                                                               strict=True)]  # fmt: skip
    fps = fingerprints(canonical)
    start_fps = fingerprints(starts.smiles)
    sims = np.array([tanimoto(a, [b])[0] for a, b in zip(start_fps, fps, strict=True)])
    same = np.array([a == b for a, b in zip(starts.smiles, canonical, strict=True)])
    verdicts = judge_table(cfg, values, starts.values, sims, same, spread, tol)
    props = cfg.properties
    heads_now = _heads_reading(model, canonical, heads_of, props, calibration)
    heads_start = _heads_reading(model, starts.smiles, {}, props, calibration)
    heads = judge_table(cfg, heads_now, heads_start, sims, same, spread, tol)
    table = pd.DataFrame({"start": starts.inputs, "smiles": canonical})
    for c in COLUMNS:
        table[f"start_{c}"] = starts.values[c].to_numpy()
    for c in COLUMNS:
        table[c] = values[c].to_numpy()
    table["similarity"] = np.where(same, 1.0, sims)
    table["changed"] = ~same
    table["success"] = verdicts.success
    readable = heads_now[props].notna().any(axis=1).to_numpy()
    table["heads_success"] = pd.array(np.where(readable, heads.success, False), dtype="boolean")
    table.loc[~readable, "heads_success"] = pd.NA
    if not cfg.guide:
        for p in props:
            table[f"predicted_{p}"] = heads_now[p].to_numpy()
    return table, verdicts


def summarise(
    cfg: ExperimentConfig, table: pd.DataFrame, verdicts: Verdicts, wall: float,
    reference: str = "none",
) -> dict[str, Any]:  # fmt: skip
    """The metrics of one outcome (``metrics.json``: the common keys of
    :mod:`latentsteer.metrics_schema`, then the molecule domain's own).

    Args:
        reference: the data the run read besides its starts (the training molecules'
            labels folder), or ``"none"``.
    """
    changed = table.changed.to_numpy(dtype=bool)
    readable = table.heads_success.notna().to_numpy()
    success = table.success.to_numpy(dtype=bool)
    heads_rate = (float(table.heads_success[readable].astype(bool).mean())
                  if readable.any() else None)  # fmt: skip
    out: dict[str, Any] = {
        "n": len(table),
        "method": cfg.method,
        "goals": list(cfg.goals),
        "success_rate": float(success.mean()),
        "predicted_success_rate": heads_rate,
        # signed, heads − RDKit, over the results the heads can read
        "success_gap": None if heads_rate is None else heads_rate - float(success[readable].mean()),
        "oracle_calls": float(table.oracle_calls.mean()),
        "model_calls": float(table.model_calls.mean()),
        "wall_s": round(wall, 2),
        "in_loop_oracles": in_loop_oracles(cfg),
        "certified_by": CERTIFIED_BY,
        "reference_data": reference,
        "task": cfg.describe(),
        "similarity_threshold": cfg.similarity,
        "budget": cfg.budget,
        "heads_read": float(readable.mean()),
        "changed": float(changed.mean()),
        "similarity": float(table.similarity[changed].mean()) if changed.any() else None,
        "valid": float(table.qed[changed].notna().mean()) if changed.any() else None,
        "unique": float(table.smiles[changed].nunique() / changed.sum()) if changed.any() else None,
        "oracle_calls_max": int(table.oracle_calls.max()),
    }  # fmt: skip
    for spec in cfg.specs:
        if spec.kind == "keep":
            continue
        gain = np.where(changed, table[spec.prop] - table[f"start_{spec.prop}"], 0.0)
        out[f"improvement_{spec.prop}"] = float(np.nanmean(gain))
        out[f"improvement_{spec.prop}_sd"] = float(np.nanstd(gain))
        out[f"{spec.prop}_rule"] = float(verdicts.goals[:, cfg.specs.index(spec)].mean())
    return out


def write_outcome(outcome: MoleculeOutcome, out: str | os.PathLike[str], rows: int = 8) -> None:
    """``molecules.csv``, ``metrics.json`` and ``grid.png`` (start → path → result for the
    first ``rows`` starts) in the folder ``out``, all or nothing."""
    from latentsteer.atomic import atomic_dir, write_json
    from latentsteer.domains.molecules.path_grid import draw_path_grid

    with atomic_dir(out) as tmp:
        outcome.table.to_csv(Path(tmp) / "molecules.csv", index=False)
        write_json(outcome.metrics, Path(tmp) / "metrics.json")
        shown = outcome.table.head(rows)
        paths = [outcome.paths[i] if i < len(outcome.paths) else [] for i in range(len(shown))]
        draw_path_grid(shown.start.tolist(), paths, shown.smiles.tolist(),
                       outcome.config.properties, Path(tmp) / "grid.png")  # fmt: skip
