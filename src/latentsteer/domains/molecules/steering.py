"""Steer molecules: one experiment, one method, every start; RDKit certifies each result.

:func:`steer_molecules` runs one experiment (an engine
:class:`~latentsteer.experiment_config.ExperimentConfig`) on :class:`MoleculeStarts`:

* the method (:mod:`.proposers`, one function each) decides which molecules to ask RDKit
  about for each start, within the experiment's oracle budget (the engine's
  :mod:`latentsteer.budget`): latent ascent proposes in rounds (:mod:`.proposals`, the
  engine's :mod:`latentsteer.rounds` ranking them by the heads' reading), the baselines
  propose their own way (:mod:`.baselines`);
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

from latentsteer.domains.molecules.calibration import HeadCalibration
from latentsteer.domains.molecules.measures import RDKIT, MoleculeMeasures
from latentsteer.domains.molecules.oracle_calls import CountedOracle
from latentsteer.domains.molecules.proposals import Proposals, read_rows
from latentsteer.domains.molecules.proposers import (
    Steering,
    calibrated,
    proposer_of,
    with_columns,
)
from latentsteer.domains.molecules.similarity import fingerprints, tanimoto
from latentsteer.domains.molecules.starts import MoleculeStarts
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.model import MultiHeadVAE
from latentsteer.rounds import select_measured
from latentsteer.verdicts import Verdicts, judge_table

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
    """What one experiment and method gave.

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
    measures: MoleculeMeasures = RDKIT,
    table_molecules: list[str] | None = None,
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
            already made (an experiment graded at several thresholds proposes its
            first round once); their inverted codes also start ``random`` and ``cmaes``.
        calibration: puts the heads' readings on RDKit's scale (:mod:`.calibration`)
            wherever they are read as values: ranking the ascent's candidates and the
            heads' verdict on every result. The unguarded ascent reports the raw heads.
        reference: the data read besides the starts (the labels folder of ``dataset``
            and ``calibration``), named in the metrics.
        measures: what the oracles read: RDKit, and the model's fitted properties (their
            guides while steering, their certifiers when certifying).
        table_molecules: the fitted properties' table molecules (method ``table``, and
            the results' ``from_table`` share).

    Raises:
        ValueError: a goal on a property the heads do not predict (ascent methods), or the
            ``dataset`` method without a dataset.
    """
    began = time.perf_counter()
    oracle = CountedOracle(cfg.budget, len(starts.smiles), cache, workers, measures)
    run = Steering(
        model, starts, cfg, spread, oracle, dataset, dataset_fps, proposals, calibration,
        workers, table_molecules=list(table_molecules or []),
    )  # fmt: skip
    results = proposer_of(cfg)(run)
    paths: list[list[str]] = [[] for _ in starts.smiles]
    if results is None:  # the best acceptable molecule each start's method asked about
        results, paths = _select(run)
    cal = calibration if cfg.guide else None  # the unguarded ascent reports the raw heads
    table, verdicts = _certify(model, starts, cfg, results, run.heads_of, spread, run.tol, cal,
                               measures)  # fmt: skip
    table["oracle_calls"] = run.oracle.calls
    table["model_calls"] = run.model_calls
    wall = time.perf_counter() - began
    if proposals is not None and cfg.method == "latent" and cfg.guide:
        wall += proposals.wall_seconds  # made once for several thresholds: each pays it
    metrics = summarise(cfg, table, verdicts, wall, reference, measures)
    metrics.update(run.extra)
    # how many held-out molecules set the heads' scale (0: the raw heads)
    metrics["heads_calibrated_on"] = 0 if cal is None else cal.molecules
    metrics.update(_from_training(table, dataset))
    metrics.update(_novelty(table, dataset, table_molecules))
    if not cfg.guide:
        for p in cfg.properties:
            if f"predicted_{p}" in table:
                metrics[f"predicted_{p}"] = float(table[f"predicted_{p}"].mean())
                metrics[f"measured_{p}"] = float(table[p].mean())
    return MoleculeOutcome(cfg, table, metrics, paths, verdicts)


def _select(run: Steering) -> tuple[list[str], list[list[str]]]:
    """Each start's best acceptable molecule among those RDKit measured for it (the start
    when there is none), where the method recorded the heads' reading preferring one they
    also call a success; and each start's path of improving molecules."""
    starts, cfg = run.starts, run.cfg
    similarity: dict[int, np.ndarray] = {}

    def sims(i: int, asked: list[str]) -> np.ndarray:
        if i not in similarity:
            similarity[i] = tanimoto(fingerprints([starts.smiles[i]])[0], fingerprints(asked))
        return similarity[i]

    agree = None
    if run.heads_of:
        # graded as `_certify` grades a result by the heads
        heads_start = _heads_reading(run.model, starts.smiles, {}, cfg.properties,
                                     run.calibration)  # fmt: skip

        def agree(i: int, asked: list[str]) -> np.ndarray:
            read = _heads_reading(run.model, asked, run.heads_of, cfg.properties,
                                  run.calibration)  # fmt: skip
            return run.grade(i, heads_start)(read, sims(i, asked)).success

    chosen = select_measured(
        run.oracle, lambda i, asked: run.grade(i)(run.oracle.lookup(asked), sims(i, asked)), agree
    )
    return [starts.smiles[i] if b is None else b for i, b in enumerate(chosen.best)], chosen.paths


def _from_training(table: pd.DataFrame, dataset: pd.DataFrame | None) -> dict[str, float]:
    """``from_training``: the share of changed results the training molecules already held
    (nothing without the training molecules or a changed result)."""
    if dataset is None or not table.changed.any():
        return {}
    known = set(dataset.canonical)
    return {"from_training": float(table.smiles[table.changed].isin(known).mean())}


def _novelty(
    table: pd.DataFrame, dataset: pd.DataFrame | None, table_molecules: list[str] | None
) -> dict[str, float]:
    """With fitted properties: the share of starts whose result is a changed molecule in
    neither the training molecules nor the properties' tables (``new``), the share of
    changed results from the tables (``from_table``), and the success counted on new
    molecules alone (``success_new``: a success whose molecule is new, over all starts)."""
    if not table_molecules:
        return {}
    known = set(table_molecules) | (set() if dataset is None else set(dataset.canonical))
    changed = table.changed.to_numpy(dtype=bool)
    new = changed & ~table.smiles.isin(known).to_numpy()
    from_table = table.smiles[table.changed].isin(set(table_molecules))
    return {
        "new": float(new.mean()),
        "from_table": float(from_table.mean()) if changed.any() else 0.0,
        "success_new": float((new & table.success.to_numpy(dtype=bool)).mean()),
    }


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
        read = calibrated(read_rows(model, tokens.to(model.device)), calibration)
        read = read.to_dict("records")
        for (k, _), r in zip(todo, read, strict=True):
            rows[k] = r
    return with_columns(pd.DataFrame(rows, index=range(len(smiles))), properties)


def _certify(
    model: MultiHeadVAE, starts: MoleculeStarts, cfg: ExperimentConfig, results: list[str],
    heads_of: dict[str, dict[str, float]], spread: dict[str, float], tol: dict[str, float],
    calibration: HeadCalibration | None = None, measures: MoleculeMeasures = RDKIT,
) -> tuple[pd.DataFrame, Verdicts]:  # fmt: skip
    """Measure every result afresh and grade it by RDKit and the fitted properties'
    certifiers (the verdicts returned) and by the heads (the table's ``heads_success``)."""
    measured = measures.measure(results, workers=1, role="certifier")
    columns = list(measures.columns)
    values = measured[columns].reset_index(drop=True)
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
    for c in columns:
        table[f"start_{c}"] = starts.values[c].to_numpy()
    for c in columns:
        table[c] = values[c].to_numpy()
    for name in measures.learned:
        table[f"applicability_{name}"] = measured[f"applicability_{name}"].to_numpy()
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
    reference: str = "none", measures: MoleculeMeasures = RDKIT,
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
        "in_loop_oracles": "; ".join(filter(None, [in_loop_oracles(cfg),
                                                   measures.describe("guide") if cfg.guide
                                                   else ""])),
        "certified_by": "; ".join(filter(None, [CERTIFIED_BY, measures.describe("certifier")])),
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
    learned = [p for p in cfg.properties if p in measures.learned]
    if learned:
        # a learned reading is NaN outside its oracle's applicability domain: such a result
        # is unverifiable, never a success; every gain stands next to the oracle's error
        outside = np.zeros(len(table), dtype=bool)
        for p in learned:
            card = measures.learned[p].card
            outside |= table[p].isna().to_numpy() & table.qed.notna().to_numpy()
            out[f"{p}_oracle_cv_mae"] = card.cv.get("certifier_mae")
            out[f"{p}_tolerance"] = card.tolerance
            out[f"{p}_unverifiable"] = float((table[p].isna() & table.qed.notna()).mean())
        out["unverifiable"] = float(outside.mean())
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
