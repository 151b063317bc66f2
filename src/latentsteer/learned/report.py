"""The results page of fitted properties: each property's fit (head, oracles, domain), then
each experiment steered on one, every method's row as measured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _num(value: Any, pct: bool = False, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.1%}" if pct else f"{value:.{digits}g}"


def fits_table(fits: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per fitted property (``metrics.json`` ``properties.<name>`` entries)."""
    lines = [
        "| property | table | rows | not encodable | model adapted | head R² (held out) "
        "| head MAE | certifier CV R² | certifier CV MAE | guide CV R² | tolerance "
        "| inside the domain | fit time |",
        "|" + "---|" * 13,
    ]
    for name, m in fits.items():
        adapted = m.get("adapted") or {}
        inside = f"{m.get('applicability')} vs {_num(m.get('applicability_threshold'))}"
        secs = m.get("seconds") or {}
        took = f"{_num(secs.get('total'))} s (adapting {_num(secs.get('adapt'))} s)"
        lines.append(
            f"| {name} | {m.get('table')} ({m.get('column')}) | {m.get('rows')} "
            f"| {m.get('refused')} | {'yes' if adapted.get('adapted') else 'no'} "
            f"| {_num(m.get('head_r2_heldout'))} | {_num(m.get('head_mae_heldout'))} "
            f"| {_num(m.get('oracle_certifier_r2'))} | {_num(m.get('oracle_certifier_mae'))} "
            f"| {_num(m.get('oracle_guide_r2'))} | {_num(m.get('tolerance'))} "
            f"({m.get('tolerance_from')}) | {inside} | {took} |"
        )
    return "\n".join(lines)


def experiments_table(experiments: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """One row per experiment and method (each ``metrics.json`` of a steering stage)."""
    lines = [
        "| experiment | goals | method | starts | success (learned certifier) | new molecules "
        "| success on new | unverifiable | from the table | from training | success by the "
        "exact measure | verdicts agree | heads' success | oracle calls |",
        "|" + "---|" * 14,
    ]
    for name, methods in experiments.items():
        for method, m in methods.items():
            exact = m.get("success_rate_exact")  # every goal, the exact measure for the learned
            agree = next((v for k, v in m.items() if k.endswith("_verdicts_agree")), None)
            lines.append(
                f"| {name} | {', '.join(m.get('goals') or [])} | {method} | {m.get('n')} "
                f"| {_num(m.get('success_rate'), True)} "
                f"| {_num(m.get('new'), True)} | {_num(m.get('success_new'), True)} "
                f"| {_num(m.get('unverifiable'), True)} | {_num(m.get('from_table'), True)} "
                f"| {_num(m.get('from_training'), True)} | {_num(exact, True)} "
                f"| {_num(agree, True)} | {_num(m.get('predicted_success_rate'), True)} "
                f"| {_num(m.get('oracle_calls'))} |"
            )
    return "\n".join(lines)


def properties_page(
    fits: Mapping[str, Mapping[str, Any]],
    experiments: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> str:
    """The whole page (unstamped)."""
    return (
        "# Your own property, as measured\n\n"
        "Each property is fitted from a table of measured samples (`latentsteer "
        "fit-property`): a head on the model's code, and a learned oracle in data space whose "
        "certifier grades the results and whose guide alone is consulted while steering. A "
        "result outside the oracle's applicability domain is unverifiable and never a "
        "success. Cross-validated errors are 5-fold, on the table.\n\n"
        "## Fitted properties\n\n" + fits_table(fits) + "\n\n"
        "## Steering on them\n\n"
        "Every method runs on the same starts with the same oracle budget. *New molecules*: "
        "results in neither the property's table nor the training molecules; *success on "
        "new*: successes whose molecule is new, over all starts. Where a table came from an "
        "exact measure (a Morpho-MNIST measure of the digits), the results are graded by it "
        "too: *success by the exact measure* holds every goal, that measure standing in for "
        "the learned certifier, and *verdicts agree* compares the two on the fitted goal.\n\n"
        + experiments_table(experiments)
        + "\n"
    )
