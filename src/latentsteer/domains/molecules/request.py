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

from latentsteer.domains.molecules.task import MoleculeTask
from latentsteer.errors import LatentsteerError

#: Settings a user may give besides goals and starts (the fields of MoleculeTask).
SETTINGS = tuple(f.name for f in dataclasses.fields(MoleculeTask) if f.name != "goals")
LABELS = "data/molecules/labels"


def steer_molecules_request(
    goals: Sequence[str],
    start: str,
    *,
    model: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    device: str = "auto",
    workers: int | None = None,
    **settings: Any,
):  # noqa: ANN201 (a MoleculeOutcome; imported lazily)
    """Steer the molecules ``start`` names towards ``goals`` (see the module docstring).

    Args:
        start: a ``.smi`` file (one SMILES per line), or ``random:N`` prior draws.
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
        property_spreads,
        read_starts,
        steer_molecules,
        write_outcome,
    )
    from latentsteer.model import load_model

    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a setting of molecule steering; accepted: "
                         f"{', '.join(SETTINGS)}")  # fmt: skip
    task = MoleculeTask(goals=list(goals), **settings)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise LatentsteerError(f"--out {out} is an existing file; give a folder")
    vae = load_model(model, resolve_device(device))
    if task.method in ("ascent", "unguarded"):
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
    dataset = None
    # The dataset baseline needs the training molecules; the ascent uses them where they are
    # (the pipeline's checkout) to offer each start's nearest ones as candidates.
    wanted = task.method == "dataset" or (task.method == "ascent" and task.neighbours > 0
                                          and Path(LABELS).is_dir())  # fmt: skip
    if wanted:
        table = read_molecule_labels(LABELS, "train")
        dataset = table[table.valid].reset_index(drop=True)
    # Where the pipeline's labels are at hand, the heads' readings are put on RDKit's scale
    # by the validation molecules (calibration.py); elsewhere the raw heads rank.
    calibration = calibration_from_labels(vae, LABELS) if Path(LABELS).is_dir() else None
    outcome = steer_molecules(vae, starts, task, property_spreads(vae, task.properties),
                              dataset=dataset, workers=workers,
                              calibration=calibration)  # fmt: skip
    if out is not None:
        write_outcome(outcome, out)
    return outcome
