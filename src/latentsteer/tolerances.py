"""How close a measured value must come to what was asked, per property, in its own units.

A goal such as ``thickness=+2`` or ``slant=0.3`` is graded by measuring the decoded sample;
a tolerance says what counts as "got it". One number for every property would be wrong
(±0.5 px is a fair slack for a stroke's thickness, but ±0.5 rad of slant is about 29°), so
each domain gives a table (:attr:`latentsteer.domain.Domain.tolerances`) and an experiment
may override entries (``oracle_tol``).
"""

from __future__ import annotations

from collections.abc import Mapping


def tolerance(
    prop: str,
    overrides: Mapping[str, float] | None = None,
    table: Mapping[str, float] | None = None,
) -> float:
    """The tolerance of ``prop``: ``overrides[prop]`` if given, else ``table[prop]`` (the
    domain's table).

    Raises:
        ValueError: no tolerance is known for ``prop``, or an override is not positive.
    """
    table = {**(table or {}), **(overrides or {})}
    if prop not in table:
        raise ValueError(
            f"no oracle tolerance for {prop!r}; known: {', '.join(sorted(table))} "
            "(set oracle_tol: {" + prop + ": VALUE})"
        )
    value = table[prop]
    if not (isinstance(value, int | float) and value > 0):
        raise ValueError(f"oracle_tol.{prop} must be a positive number; got {value!r}")
    return float(value)


def goal_tolerance(
    column: str,
    overrides: dict[str, float] | None = None,
    table: Mapping[str, float] | None = None,
) -> float:
    """The success tolerance of a regression goal on label ``column``, in its units.

    Args:
        overrides: the experiment's ``oracle_tol``.
        table: the domain's tolerances.

    A column no oracle measures (a head on the user's own label) has no table entry; its
    goals are unverified anyway, and the heads' success uses an override or 0.5.
    """
    if column in (table or {}) or column in (overrides or {}):
        return tolerance(column, overrides, table)
    return 0.5
