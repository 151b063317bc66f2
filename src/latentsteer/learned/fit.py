"""``fit-property``: a table of measured samples in, a model that steers the property out.

:func:`fit_property` runs the steps in order and writes nothing until all have succeeded:

1. read and check the table (the domain's reader, :mod:`.table`'s shared checks);
2. adapt the model where it cannot encode the table's samples (the domain's
   :meth:`~latentsteer.domain.Domain.adapt_model`), then encode them; a sample it still
   cannot encode is counted and named, never dropped silently;
3. fit the learned oracle in data space on the whole table, of other model families (the
   domain's :meth:`~latentsteer.domain.Domain.fit_property_oracle`: certifier and guide,
   cross-validated errors, applicability domain, tolerance);
4. fit a head on the codes (:mod:`.head`; held-out R² and MAE on the table), and on codes
   near them and from the prior whose decoded samples the learned guide reads inside its
   domain: the head must hold where steering goes;
5. write the new model folder: the model with the head, ``properties/<name>/`` with the
   oracle, the properties the input model had already, and ``metrics.json`` with a card of
   every step under ``properties.<name>``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentsteer.atomic import atomic_dir, check_writable, write_json
from latentsteer.learned.card import FOLDER, PropertyCard, PropertyOracle, property_folders
from latentsteer.learned.head import HeadFit, fit_head
from latentsteer.learned.table import MIN_ROWS
from latentsteer.loading import load_model
from latentsteer.model import MultiHeadVAE, save_model
from latentsteer.modelio import CONFIG_FILE, read_metrics

#: Rows named one by one in messages and the card; the rest are counted.
SHOWN = 10


@dataclass
class PropertyFit:
    """What :func:`fit_property` did.

    Attributes:
        name: the property (head and goal name).
        out: the new model folder.
        card: the learned oracle's card.
        head: the head's fit.
        rows: rows in the table after merging exact duplicates.
        refused: one line per row the model could not encode.
        adapted: the domain's report of adapting the model (``{}``: not needed).
        seconds: wall time of each step.
        merged: table rows dropped as exact duplicates of another row.
        decoded: decoded samples the head also learned from (read by the learned guide).
    """

    name: str
    out: Path
    card: PropertyCard
    head: HeadFit
    rows: int
    refused: list[str]
    adapted: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    merged: int = 0
    decoded: int = 0

    def metrics(self) -> dict[str, Any]:
        """The ``properties.<name>`` entry of the new model's ``metrics.json``."""
        card = self.card
        return {
            "table": card.table, "column": card.column, "rows": self.rows,
            "merged_duplicates": self.merged,
            "encoded": self.rows - len(self.refused), "refused": len(self.refused),
            "refused_rows": self.refused[:SHOWN],
            **self.head.metrics(), "head_decoded_rows": self.decoded,
            "oracle_certifier": card.certifier, "oracle_guide": card.guide,
            **{f"oracle_{k}": round(v, 6) for k, v in card.cv.items()},
            "oracle_cv": "5-fold cross-validation on the table",
            "tolerance": card.tolerance, "tolerance_from": card.tolerance_from,
            "applicability": card.applicability, "applicability_threshold": card.threshold,
            "value_range": list(card.value_range),
            "adapted": self.adapted or {"adapted": False},
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }  # fmt: skip

    def summary(self) -> str:
        """A few lines for the terminal."""
        c = self.card
        lines = [
            f"{self.name}: {self.rows} rows of {c.table} ({len(self.refused)} not encodable)",
            f"  head on the code: held-out R² {self.head.r2:.3f}, MAE {self.head.mae:.3g}",
            f"  certifier ({c.certifier}): CV R² {c.cv['certifier_r2']:.3f}, "
            f"MAE {c.cv['certifier_mae']:.3g}",
            f"  guide ({c.guide}): CV R² {c.cv['guide_r2']:.3f}, MAE {c.cv['guide_mae']:.3g}",
            f"  tolerance {c.tolerance:.3g} ({c.tolerance_from}); inside the domain: "
            f"{c.applicability} {'≥' if c.inside_when == 'at_least' else '≤'} {c.threshold:.3g}",
        ]
        if self.adapted.get("adapted"):
            lines.append(f"  model adapted: {self.adapted}")
        lines += [f"  not encodable: {r}" for r in self.refused[:SHOWN]]
        if len(self.refused) > SHOWN:
            lines.append(f"  … and {len(self.refused) - SHOWN} more")
        lines.append(f"wrote {self.out}")
        return "\n".join(lines)


def _keep_entries(source: str | os.PathLike[str], target: Path) -> None:
    """Copy the ``config.json`` entries of ``source`` that ``target``'s lacks (how the model
    was made, e.g. the measure definition its heads were calibrated to)."""
    old = json.loads((Path(source) / CONFIG_FILE).read_text())
    path = target / CONFIG_FILE
    new = json.loads(path.read_text())
    path.write_text(json.dumps({**new, **{k: v for k, v in old.items() if k not in new}},
                               indent=2) + "\n")  # fmt: skip


#: Decoded samples the head also learns from, per table row (at most DECODED_MAX).
DECODED_PER_ROW, DECODED_MAX = 2, 4000
#: The spread of the codes they are decoded from around the table's codes (prior units).
DECODED_NOISE = 0.5


def _decoded_readings(
    model: MultiHeadVAE, codes: torch.Tensor, oracle: PropertyOracle, seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    """Codes near the table's and from the prior, decoded and read by the learned **guide**
    (inside its applicability domain only): ``(codes (m, d), values (m,))``.

    The head must be right where steering takes codes, on what the decoder makes of them,
    not only at the table's own codes; the certifier stays out of it, so it still grades a
    head it never taught (as the MNIST heads are calibrated on decoded images' measures).
    """
    n = min(DECODED_PER_ROW * len(codes), DECODED_MAX)
    g = torch.Generator().manual_seed(seed)
    near = codes[torch.randint(len(codes), (n // 2,), generator=g)].cpu()
    near = near + DECODED_NOISE * torch.randn(near.shape, generator=g)
    z = torch.cat([near, model.sample_prior(n - n // 2, seed=seed + 1).cpu()]).to(model.device)
    support = importlib.import_module(str(model.domain.property_support))
    with torch.no_grad():
        samples = support.decoded_samples(model, z)
    values = np.asarray(oracle.predict(samples, "guide"), dtype=np.float64)
    keep = oracle.card.inside(np.asarray(oracle.applicability(samples))) & np.isfinite(values)
    return z[torch.as_tensor(keep, device=z.device)], values[keep]


def check_name(name: str, taken: set[str], builtin: set[str]) -> None:
    """Refuse a property name that is not an identifier or is already a property.

    Raises:
        ValueError: one line naming the clash.
    """
    if not name.isidentifier():
        raise ValueError(f"property name {name!r} must be an identifier (letters, digits, _)")
    if name in builtin:
        raise ValueError(f"property name {name!r} is a built-in property of this domain "
                         f"({', '.join(sorted(builtin))}); choose another with --name")  # fmt: skip
    if name in taken:
        raise ValueError(f"the model already has a property {name!r}; choose another with "
                         "--name")  # fmt: skip


def fit_property(
    model_dir: str | os.PathLike[str],
    table: str | os.PathLike[str],
    column: str,
    out: str | os.PathLike[str],
    name: str | None = None,
    seed: int = 0,
    tolerance: float | None = None,
    device: str = "cpu",
) -> PropertyFit:
    """Fit a property from ``table`` onto the model in ``model_dir``; write ``out``.

    Args:
        model_dir: a trained model folder.
        table: the domain's table of samples and measured values.
        column: the property's column in it.
        out: the new model folder (must differ from ``model_dir``).
        name: the property's name as a goal (default: ``column``).
        seed: the head's split and initial weights, the oracles' folds and seeds.
        tolerance: the goals' tolerance in the property's units (default: the certifier's
            cross-validated MAE).
        device: where the model encodes (``cpu``, ``cuda``, ``auto``).

    Raises:
        ValueError: a bad table, name, tolerance or output (one line; nothing written).
        LatentsteerError: an unreadable model folder.
    """
    from latentsteer.devices import resolve_device

    began = time.perf_counter()
    seconds: dict[str, float] = {}
    name = column if name is None else name
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number; got {tolerance!r}")
    if Path(out).resolve() == Path(model_dir).resolve():
        raise ValueError("--out must be a new folder, not the input model's")
    check_writable(out, whole=True)
    model = load_model(model_dir, resolve_device(device))
    domain = model.domain
    check_name(name, set(model.head_names), domain.builtin_properties())
    rows = domain.read_property_table(table, column)
    seconds["read"] = time.perf_counter() - began
    t = time.perf_counter()
    model, adapted = domain.adapt_model(model, rows, model_dir, seed)
    domain = model.domain  # an adapted model's (molecules: its extended vocabulary)
    seconds["adapt"] = time.perf_counter() - t
    t = time.perf_counter()
    codes, kept, refused = domain.table_codes(model, rows)
    if len(kept) < MIN_ROWS:
        first = f" (first: {refused[0]})" if refused else ""
        raise ValueError(f"{table}: the model can encode only {len(kept)} of {len(rows)} rows; "
                         f"the fit needs at least {MIN_ROWS}{first}")  # fmt: skip
    seconds["encode"] = time.perf_counter() - t
    metrics = read_metrics(model_dir)
    with atomic_dir(out) as tmp:
        t = time.perf_counter()
        oracle = domain.fit_property_oracle(rows, name, tmp / FOLDER / name, seed, tolerance)
        seconds["oracle"] = time.perf_counter() - t
        t = time.perf_counter()
        decoded = _decoded_readings(model, codes, oracle, seed)
        head = fit_head(model, codes, rows.values[kept], name, seed, extra=decoded)
        seconds["head"] = time.perf_counter() - t
        new = head.model
        new.domain = domain.moved(model_dir, out)
        save_model(new, tmp / ".model")
        for file in (tmp / ".model").iterdir():
            file.replace(tmp / file.name)
        (tmp / ".model").rmdir()
        _keep_entries(model_dir, tmp)
        for folder in property_folders(model_dir):  # properties fitted before this one
            shutil.copytree(folder, tmp / FOLDER / folder.name)
        seconds["total"] = time.perf_counter() - began
        fit = PropertyFit(name, Path(out), oracle.card, head, len(rows), refused, adapted,
                          seconds, rows.merged, len(decoded[0]))  # fmt: skip
        props = dict(metrics.get("properties", {}))
        props[name] = fit.metrics()
        metrics["properties"] = props
        write_json(metrics, tmp / "metrics.json")
    return fit
