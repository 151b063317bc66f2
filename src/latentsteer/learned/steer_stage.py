"""The pipeline's ``steer_property@<name>`` stages of both domains (:func:`steer_stage`):
an experiment on a fitted property's model, latent ascent and each baseline on the same
starts and oracle budget, through :func:`latentsteer.steer`, logged as one MLflow run."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from latentsteer.config import section
from latentsteer.learned.fit_stage import numbers, params_entry
from latentsteer.learned.settings import PropertyExperimentConfig


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
    from latentsteer.optimize_config import OptimizeConfig
    from latentsteer.registry import domain_of
    from latentsteer.request import source_paths, steer

    key, entry = params_entry(params, where, name)
    cfg = section(entry, key, PropertyExperimentConfig)
    model = Path(models) / cfg.property
    span = tracking.Span.begin()
    # One context for every method: the model, the learned oracles (a molecule oracle is
    # refitted from its table when loaded) and the oracles' cache are read once.
    kind = domain_of(model)
    context = kind.load_context(model, OptimizeConfig(device=device),
                                source_paths(model, kind.sources, dict(sources or {})))  # fmt: skip
    rows: dict[str, dict[str, Any]] = {}
    methods = ["latent", *cfg.baselines]
    settings = cfg.settings()
    with atomic_dir(out) as tmp:
        for method in methods:
            extra = {} if method == "latent" else {"method": method}
            outcome = steer(cfg.goals, start or cfg.start, context=context,
                            out=Path(tmp) / method, **settings, **extra)  # fmt: skip
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
            run.log_metrics(numbers(m, f"{method}."))
    return rows
