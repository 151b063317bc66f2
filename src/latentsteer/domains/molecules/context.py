"""What molecule steering reads besides an experiment's settings: the model, and the training
molecules' labels when at hand.

:func:`load_context` is the molecule domain's ``context_loader``: ``latentsteer steer`` and
:func:`latentsteer.steer` on a molecule model come through it to the engine's runner
(:func:`latentsteer.runner.run_experiment`), which hands the experiment to
:meth:`MoleculeContext.steer`. With nothing but goals and starts the experiment defaults
hold (latent ascent within 100 RDKit calls per start, similarity ≥ 0.4; the molecule
domain's ``experiment_defaults``).

The labels folder is the one given (``labels=`` / ``--labels``), else the one the model
recorded at training, relative to its folder; never the working directory. With it the
nearest training molecules join the ascent's candidates, the ``dataset`` method has its
molecules and the heads are put on RDKit's scale (:mod:`.calibration`); without it none of
the three.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from latentsteer.domain import Domain
from latentsteer.domains.molecules.calibration import HeadCalibration, calibration_from_labels
from latentsteer.domains.molecules.measures import RDKIT, MoleculeMeasures
from latentsteer.domains.molecules.proposal_settings import ProposalSettings
from latentsteer.domains.molecules.proposals import Proposals
from latentsteer.domains.molecules.similarity import fingerprints
from latentsteer.domains.molecules.smiles_file import SUFFIXES, read_smiles_file
from latentsteer.domains.molecules.starts import MoleculeStarts, read_starts
from latentsteer.domains.molecules.steering import (
    MoleculeOutcome,
    labels_read,
    property_spreads,
    steer_molecules,
)
from latentsteer.experiment_config import ExperimentConfig
from latentsteer.learned.attach import load_properties
from latentsteer.model import MultiHeadVAE
from latentsteer.optimize_config import OptimizeConfig


@dataclass
class MoleculeContext:
    """The model and the data a molecule experiment reads besides its settings.

    Attributes:
        model: the trained molecule VAE.
        labels: the training molecules' labels folder, or ``None``.
        workers: processes for RDKit (``None``: one per core).
        cache: RDKit measures shared by every experiment on this context (a molecule is
            measured once in wall time; what a method is charged never changes).
        measures: what the oracles read: RDKit and the model's fitted properties.
        table_molecules: the fitted properties' table molecules (canonical SMILES).
    """

    model: MultiHeadVAE
    labels: Path | None = None
    workers: int | None = None
    cache: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    measures: MoleculeMeasures = field(default=RDKIT, repr=False)
    table_molecules: list[str] = field(default_factory=list, repr=False)

    @functools.cached_property
    def dataset(self) -> pd.DataFrame | None:
        """The valid training molecules (``canonical``, ``selfies`` and the properties), read
        once when first needed; ``None`` without labels."""
        if self.labels is None:
            return None
        from latentsteer.domains.molecules.labelled import read_molecule_labels

        table = read_molecule_labels(self.labels, "train")
        return table[table.valid].reset_index(drop=True)

    @functools.cached_property
    def dataset_fps(self) -> list[object] | None:
        """The training molecules' fingerprints, computed once when first needed."""
        return None if self.dataset is None else fingerprints(self.dataset.canonical.tolist())

    @functools.cached_property
    def calibration(self) -> HeadCalibration | None:
        """The heads on RDKit's scale, from the validation molecules; ``None`` without
        labels (the raw heads rank)."""
        return None if self.labels is None else calibration_from_labels(self.model, self.labels)

    @property
    def reference_data(self) -> str:
        """What the metrics call the data read besides the starts."""
        return labels_read(self.labels)

    def read_start(self, spec: str, seed: int = 0) -> MoleculeStarts:
        """``random:N`` (the molecules of ``N`` seeded prior draws that decode to one) or a
        ``.smi`` file (one SMILES per line; an error names the line).

        Raises:
            ValueError: another spec, or a molecule the model cannot read (one line).
        """
        if m := re.fullmatch(r"random:(\d+)", spec):
            if int(m.group(1)) < 1:
                raise ValueError(f"start {spec!r}: N must be at least 1")
            codes = self.model.sample_prior(int(m.group(1)), seed)
            drawn = self.model.domain.to_smiles(self.model.decode(codes))  # type: ignore[attr-defined]
            return read_starts(self.model, [s for s in drawn if s], measures=self.measures)
        if spec.lower().endswith(SUFFIXES):
            found = read_smiles_file(spec)
            return read_starts(self.model, found.smiles, [f"line {n}" for n in found.lines],
                               self.measures)  # fmt: skip
        raise ValueError(f"bad start {spec!r}; accepted: {self.model.domain.start_help}")

    def steer(
        self,
        cfg: ExperimentConfig,
        starts: MoleculeStarts | None = None,
        proposals: Proposals | None = None,
    ) -> MoleculeOutcome:
        """Run ``cfg`` from ``starts`` (by default the molecules ``cfg.start`` names); RDKit
        certifies every result (:func:`~.steering.steer_molecules`).

        Args:
            proposals: the latent ascent's first round for these starts and goals, when
                already made (an experiment graded at several thresholds proposes once).

        Raises:
            ValueError: a goal the heads do not predict (latent ascent), ``dataset``
                without labels, a bad ``proposer`` setting or start (one line each, before
                any steering).
        """
        proposer = ProposalSettings.of(cfg.proposer)
        if cfg.method == "latent":
            heads = {h.column for h in self.model.config.heads}
            for spec in cfg.specs:
                if spec.prop not in heads:
                    raise ValueError(f"goal {spec.text!r}: the model's heads predict "
                                     f"{', '.join(sorted(heads))}, not {spec.prop}; a search "
                                     "without the model (method ga) can steer it")  # fmt: skip
        if cfg.method == "dataset" and self.labels is None:
            raise ValueError("method dataset needs the training molecules: give labels=FOLDER "
                             "(--labels)")  # fmt: skip
        if starts is None:
            starts = self.read_start(cfg.start, cfg.seed)
        # The dataset method picks from the training molecules and the ascent offers each
        # start's nearest ones (both by fingerprint); every method's results are looked up
        # among them (from_training).
        near = cfg.method == "dataset" or (
            cfg.method == "latent" and cfg.guide and proposer.neighbours
        )  # fmt: skip
        return steer_molecules(
            self.model, starts, cfg, property_spreads(self.model, cfg.properties),
            dataset=self.dataset, dataset_fps=self.dataset_fps if near else None,
            cache=self.cache,
            workers=self.workers, proposals=proposals, calibration=self.calibration,
            reference=self.reference_data, measures=self.measures,
            table_molecules=self.table_molecules,
        )  # fmt: skip


def labels_folder(
    model: str | os.PathLike[str], recorded: str | None, given: str | os.PathLike[str] | None
) -> Path | None:
    """The training molecules' labels folder a context reads: ``given``, else the folder the
    model recorded at training (relative to the model folder), when it exists; ``None``
    without either.

    Raises:
        ValueError: ``given`` is not a folder.
    """
    if given is not None:
        if not Path(given).is_dir():
            raise ValueError(f"labels {given}: not a folder of the training molecules' labels")
        return Path(given)
    if recorded is not None and (Path(model) / recorded).is_dir():
        return (Path(model) / recorded).resolve()  # named in the metrics: no "../.."
    return None


def load_context(
    domain: Domain,
    model_dir: str | os.PathLike[str],
    settings: OptimizeConfig,
    sources: Mapping[str, str | os.PathLike[str] | None],
    cached: str | os.PathLike[str] | None = None,
) -> MoleculeContext:
    """The molecule domain's ``context_loader``: the model on ``settings.device`` and the
    labels folder ``sources["labels"]`` (else the one the model recorded)."""
    from latentsteer.devices import resolve_device
    from latentsteer.loading import load_model

    model = load_model(model_dir, resolve_device(settings.device))
    recorded = getattr(model.domain, "labels", None)
    folder = labels_folder(model_dir, recorded, sources.get("labels"))
    # Properties fitted from the user's tables: their guides steer, their certifiers grade.
    learned = load_properties(model, model_dir)
    tables = [m for o in learned.values() for m in getattr(o, "smiles", [])]
    return MoleculeContext(model, folder, workers=settings.workers,
                           measures=MoleculeMeasures(learned),
                           table_molecules=list(dict.fromkeys(tables)))  # fmt: skip
