"""The pipeline's stages for fitted properties, shared by the domains' thin scripts:
``fit_property@<name>`` (:func:`fit_stage`) and ``steer_property@<name>``
(:func:`steer_stage`). Each reads its params entry (typed, :mod:`.settings`), does the work
through the library's public functions (the ones the CLI calls) and logs one MLflow run.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from latentsteer.config import section
from latentsteer.learned.settings import PropertyConfig, PropertyExperimentConfig


def _entry(params: Mapping[str, Any], where: str, name: str) -> tuple[str, dict[str, Any]]:
    """``(key, {key: entry})`` of ``where.name`` in ``params`` (``where`` dotted)."""
    node: Any = params
    for part in where.split("."):
        node = (node or {}).get(part) if isinstance(node, Mapping) else None
    entries = node or {}
    if name not in entries:
        raise ValueError(f"params.yaml: no {where}.{name}; have: {', '.join(entries) or 'none'}")
    key = f"{where}.{name}"
    return key, {key: entries[name]}


def _numbers(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric entries of ``metrics`` (nested ones dotted), for MLflow."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, Mapping):
            out.update(_numbers(v, f"{prefix}{k}."))
        elif isinstance(v, int | float) and not isinstance(v, bool) and v == v:
            out[f"{prefix}{k}"] = float(v)
    return out


def fit_stage(
    params: Mapping[str, Any], where: str, name: str, model: str, out: str | Path,
    domain: str, device: str = "auto",
) -> None:  # fmt: skip
    """``fit_property@<name>``: fit ``where.<name>`` of params onto ``model``, into ``out``.

    Args:
        where: the params section of the domain's properties (``properties``,
            ``molecules.properties``).
        domain: the MLflow experiment's domain.
    """
    from latentsteer import tracking
    from latentsteer.learned.fit import fit_property
    from latentsteer.tracking import data_hash

    key, entry = _entry(params, where, name)
    cfg = section(entry, key, PropertyConfig)
    span = tracking.Span.begin()
    fit = fit_property(model, cfg.table, cfg.column, out, name=name, seed=cfg.seed,
                       tolerance=cfg.tolerance, device=device)  # fmt: skip
    print(fit.summary(), file=sys.stderr)
    span.end()
    with tracking.start_run(f"fit_property_{name}", stage=f"fit_property@{name}",
                            tags={"data_hash": data_hash(cfg.table)}, domain=domain,
                            span=span) as run:  # fmt: skip
        run.log_params({"table": cfg.table, "column": cfg.column, "seed": cfg.seed,
                        "tolerance": cfg.tolerance})  # fmt: skip
        run.log_metrics(_numbers(fit.metrics()))


def steer_stage(
    params: Mapping[str, Any], where: str, name: str, models: str | Path, out: str | Path,
    domain: str, start: str | None = None, device: str = "auto",
    sources: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """``steer_property@<name>``: the experiment ``where.<name>``, by latent ascent and each
    baseline on the same starts and oracle budget, into ``out/<method>/``, and
    ``out/metrics.json`` (every method's metrics).

    Args:
        models: the folder of the fitted properties' models (``<models>/<property>``).
        start: the starts to use in place of the entry's (a file the caller wrote for
            ``lowest:N``).
        sources: the domain's sources by name (MNIST: the judge, certifier, data, labels).

    Returns:
        method → its metrics.
    """
    from latentsteer import tracking
    from latentsteer.atomic import atomic_dir, write_json
    from latentsteer.request import steer

    key, entry = _entry(params, where, name)
    cfg = section(entry, key, PropertyExperimentConfig)
    model = Path(models) / cfg.property
    span = tracking.Span.begin()
    rows: dict[str, dict[str, Any]] = {}
    methods = ["latent", *cfg.baselines]
    settings = cfg.settings()
    with atomic_dir(out) as tmp:
        for method in methods:
            extra = {} if method == "latent" else {"method": method}
            outcome = steer(cfg.goals, start or cfg.start, model=model, out=Path(tmp) / method,
                            device=device, **(sources or {}), **settings, **extra)  # fmt: skip
            rows[method] = outcome.metrics
            m = outcome.metrics
            line = (f"steer_property@{name}: {method}: success {m['success_rate']}, new "
                    f"{m.get('new')}, unverifiable {m.get('unverifiable')}")  # fmt: skip
            print(line, file=sys.stderr)
        write_json(rows, Path(tmp) / "metrics.json")
    span.end()
    with tracking.start_run(f"steer_property_{name}", stage=f"steer_property@{name}",
                            domain=domain, span=span) as run:  # fmt: skip
        run.log_params({"property": cfg.property, "goals": ", ".join(cfg.goals),
                        "start": start or cfg.start, "budget": cfg.budget})  # fmt: skip
        for method, m in rows.items():
            run.log_metrics(_numbers(m, f"{method}."))
    return rows
