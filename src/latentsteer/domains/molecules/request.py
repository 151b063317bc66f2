"""Steer molecules from the library or the CLI: goals, starts and a similarity in, a folder of
RDKit-certified results out.

``latentsteer steer --model models/molecules/vae --start my.smi --goal plogp=max
--similarity 0.4 --out DIR`` and :func:`latentsteer.steer` on a molecule model both come
here. With nothing but goals and starts the defaults of :class:`~.task.MoleculeTask` hold:
latent ascent within 100 RDKit calls per start, similarity ≥ 0.4. ``DIR`` gets
``molecules.csv`` (one row per start, in input order), ``metrics.json`` and ``grid.png``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentsteer.atomic import check_writable
from latentsteer.domains.molecules.task import MoleculeTask
from latentsteer.errors import LatentsteerError

#: Settings a user may give besides goals and starts (the fields of MoleculeTask).
SETTINGS = tuple(f.name for f in dataclasses.fields(MoleculeTask) if f.name != "goals")


def labels_folder(
    model: str | os.PathLike[str], recorded: str | None, given: str | os.PathLike[str] | None
) -> Path | None:
    """The training molecules' labels folder a request reads: ``given``, else the folder the
    model recorded at training (relative to the model folder), when it exists; ``None``
    without either: then nothing but the model and the starts is read.

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


def steer_molecules_request(
    goals: Sequence[str],
    start: str,
    *,
    model: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    device: str = "auto",
    workers: int | None = None,
    labels: str | os.PathLike[str] | None = None,
    **settings: Any,
):  # noqa: ANN201 (a MoleculeOutcome; imported lazily)
    """Steer the molecules ``start`` names towards ``goals`` (see the module docstring).

    Args:
        start: a ``.smi`` file (one SMILES per line), or ``random:N`` prior draws.
        labels: the training molecules' labels folder (the pipeline's
            ``data/molecules/labels``); by default the one the model recorded at training,
            when it exists. With it the nearest training molecules join the ascent's
            candidates and the heads are put on RDKit's scale; without it neither.
        settings: fields of :class:`~.task.MoleculeTask` (``similarity``, ``bounds``,
            ``budget``, ``method``, ...).

    Raises:
        ValueError: an unknown setting, a bad goal, bound, similarity or start (one line,
            before anything is written).
    """
    from latentsteer.devices import resolve_device
    from latentsteer.domains.molecules.calibration import calibration_from_labels
    from latentsteer.domains.molecules.labelled import read_molecule_labels
    from latentsteer.domains.molecules.smiles_file import SUFFIXES, read_smiles_file
    from latentsteer.domains.molecules.steering import (
        labels_read,
        property_spreads,
        read_starts,
        steer_molecules,
        write_outcome,
    )
    from latentsteer.loading import load_model

    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a setting of molecule steering; accepted: "
                         f"{', '.join(SETTINGS)}")  # fmt: skip
    task = MoleculeTask(goals=list(goals), **settings)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise LatentsteerError(f"--out {out} is an existing file; give a folder")
    check_writable(out, whole=True)  # write_outcome replaces the folder from its parent
    vae = load_model(model, resolve_device(device))
    if task.method == "latent":
        heads = {h.column for h in vae.config.heads}
        for spec in task.specs:
            if spec.prop not in heads:
                raise ValueError(f"goal {spec.text!r}: the model's heads predict "
                                 f"{', '.join(sorted(heads))}, not {spec.prop}; a search "
                                 "without the model (method ga) can steer it")  # fmt: skip
    if m := re.fullmatch(r"random:(\d+)", start):
        if int(m.group(1)) < 1:
            raise ValueError(f"start {start!r}: N must be at least 1")
        drawn = vae.domain.to_smiles(vae.decode(vae.sample_prior(int(m.group(1)), task.seed)))
        smiles, names = [s for s in drawn if s], None
    elif start.lower().endswith(SUFFIXES):
        found = read_smiles_file(start)
        smiles, names = found.smiles, [f"line {n}" for n in found.lines]
    else:
        raise ValueError(f"bad start {start!r}; accepted: random:N, or a .smi file (one "
                         "SMILES per line)")  # fmt: skip
    starts = read_starts(vae, smiles, names)
    folder = labels_folder(model, getattr(vae.domain, "labels", None), labels)
    if task.method == "dataset" and folder is None:
        raise ValueError("method dataset needs the training molecules: give labels=FOLDER "
                         "(--labels)")  # fmt: skip
    dataset = None
    # The dataset baseline needs the training molecules; the ascent uses them, when given,
    # to offer each start's nearest ones as candidates.
    if folder is not None and (task.method == "dataset" or (task.method == "latent"
                                                            and task.neighbours > 0)):  # fmt: skip
        table = read_molecule_labels(folder, "train")
        dataset = table[table.valid].reset_index(drop=True)
    # With the labels at hand, the heads' readings are put on RDKit's scale by the
    # validation molecules (calibration.py); without them the raw heads rank.
    calibration = calibration_from_labels(vae, folder) if folder is not None else None
    outcome = steer_molecules(vae, starts, task, property_spreads(vae, task.properties),
                              dataset=dataset, workers=workers, calibration=calibration,
                              reference=labels_read(folder))  # fmt: skip
    if out is not None:
        write_outcome(outcome, out)
    return outcome
