"""The pipeline's ``fit_property@<name>`` stages of both domains (:func:`fit_stage`), and
the params helpers the property stages share: each reads its params entry (typed,
:mod:`.settings`), does the work through the library's public functions (the ones the CLI
calls) and logs one MLflow run.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from latentsteer.config import section
from latentsteer.learned.settings import PropertyConfig


def params_entry(params: Mapping[str, Any], where: str, name: str) -> tuple[str, dict[str, Any]]:
    """``(key, {key: entry})`` of ``where.name`` in ``params`` (``where`` dotted)."""
    node: Any = params
    for part in where.split("."):
        node = (node or {}).get(part) if isinstance(node, Mapping) else None
    entries = node or {}
    if name not in entries:
        raise ValueError(f"params.yaml: no {where}.{name}; have: {', '.join(entries) or 'none'}")
    key = f"{where}.{name}"
    return key, {key: entries[name]}


def numbers(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric entries of ``metrics`` (nested ones dotted), for MLflow."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, Mapping):
            out.update(numbers(v, f"{prefix}{k}."))
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

    key, entry = params_entry(params, where, name)
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
        run.log_metrics(numbers(fit.metrics()))
