"""The library's one-call entry point: goals and a start in, oracle-certified samples out.

``latentsteer.steer(goals=[...], start=...)`` does what ``latentsteer steer --goal ...
--start ...`` does: it loads the model and what its domain's context reads (given by name, or
the pipeline's folders in the checkout that holds the model folder: never the working
directory), runs one experiment through the engine's runner with the defaults of
:class:`~latentsteer.experiment_config.ExperimentConfig` and the model's domain (closed loop
on, see :mod:`latentsteer.guide`) and certifies every sample with oracles the loop never
saw. Anything else an experiment entry accepts for that domain may be passed as a keyword.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from latentsteer.atomic import check_writable
from latentsteer.context import Context
from latentsteer.errors import LatentsteerError
from latentsteer.experiment_config import configure
from latentsteer.learned.card import cards_of, with_tolerances
from latentsteer.optimize_config import OptimizeConfig
from latentsteer.outcome import SteerOutcome
from latentsteer.registry import domain_of
from latentsteer.runner import ProposingContext, run_experiment


def checkout_of(path: str | Path) -> Path | None:
    """The pipeline checkout holding ``path``: the nearest folder at or above it with a
    ``dvc.yaml``, or ``None``."""
    here = Path(path).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return None


def source_paths(
    model: str | Path, defaults: Mapping[str, str | None], given: Mapping[str, Any]
) -> dict[str, Any]:
    """The sources a steering context reads: those ``given``, else the domain's pipeline
    defaults in the checkout that holds the ``model`` folder, never the working directory.

    Raises:
        LatentsteerError: a default is needed but ``model`` lies in no pipeline checkout
            (one line naming the options to give).
    """
    out: dict[str, Any] = dict(given)
    missing = [k for k, v in defaults.items() if k not in given and v is not None]
    if missing:
        root = checkout_of(model)
        if root is None:
            flags = ", ".join(f"--{k}" for k in missing)
            raise LatentsteerError(f"{model} lies in no pipeline checkout (no dvc.yaml above "
                                   f"it), so give its sources: {flags}")  # fmt: skip
        out.update({k: str(root / defaults[k]) for k in missing})  # type: ignore[operator]
    out.update({k: None for k, v in defaults.items() if k not in given and v is None})
    return out


def steer(
    goals: Sequence[str],
    start: str = "random:256",
    *,
    model: str | Path = "models/vae_calibrated",
    context: Context | ProposingContext | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    workers: int | None = None,
    **settings: Any,
) -> SteerOutcome:
    """Steer samples towards ``goals`` and certify them.

    Args:
        goals: goal strings, e.g. ``["thickness=max", "digit=keep"]`` (see
            :mod:`latentsteer.goalspec`).
        start: ``random:N``, or a form the model's domain reads (MNIST: ``test:A-B`` or a
            path to images; molecules: a ``.smi`` file).
        model: the model folder (the pipeline's by default); it names its domain.
        context: an already loaded context (then no folder is read).
        out: a folder for the run's files: MNIST ``trajectory.npz``, ``grid.png``,
            ``curves.png`` and ``metrics.json``, as the optimize stages write them;
            molecules ``molecules.csv``, ``metrics.json`` and ``grid.png``.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        workers: processes for the oracles' measures (``None``: one per core).
        **settings: the domain's sources by name (MNIST: ``judge``, ``certifier`` — ``None``
            grades with the guide judge, and the metrics say so —, ``data``, ``labels``;
            molecules: ``labels``), and any field of :class:`ExperimentConfig` the model's
            domain takes (``budget``, ``guide``, ``steps``; molecules: ``similarity``,
            ``bounds``, ``proposer``, ...), its defaults the domain's.

    Returns:
        A :class:`~latentsteer.outcome.SteerOutcome` of any domain: ``outcome.metrics`` has
        the common keys (oracle success next to the heads'), and
        ``outcome.per_sample["success"]`` says which starts the oracles certified (MNIST:
        a :class:`~latentsteer.results.Outcome`; molecules: a
        :class:`~latentsteer.domains.molecules.steering.MoleculeOutcome`).

    Raises:
        ValueError: a bad goal, start or setting (one line naming it).
        LatentsteerError: a missing or damaged model folder or source.
    """
    # Before any model is read, a folder we cannot write fails now (a molecule run replaces
    # it as a whole, so the folder holding it is checked).
    check_writable(out, whole=True)
    if context is not None:
        domain = context.model.domain
    else:  # with the tolerances of the properties fitted onto it (latentsteer fit-property)
        domain = with_tolerances(domain_of(model), cards_of(model))
    given = {k: settings.pop(k) for k in list(settings) if k in domain.sources}
    if given and context is not None:
        raise ValueError(f"{', '.join(given)}: a source of the model's context; the context "
                         "given is already loaded")  # fmt: skip
    cfg = configure(domain, {"goals": list(goals), "start": start, **settings})
    if context is None:
        sources = source_paths(model, domain.sources, given)
        shared = OptimizeConfig(device=device, workers=workers)
        context = domain.load_context(model, shared, sources)
    outcome = run_experiment(cfg, context)
    if out is not None:
        outcome.write(out)
    return outcome
