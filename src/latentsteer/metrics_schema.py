"""The keys every steering run's ``metrics.json`` holds, in every domain, one meaning each.

A domain adds keys of its own (MNIST: realism and diversity; molecules: similarity,
improvement per property, ...), never redefines one of these. :func:`check_metrics` is what
the tests hold both domains to; ``docs/reference/metrics.md`` documents the same table.
"""

from __future__ import annotations

from collections.abc import Mapping

#: key -> (accepted types, meaning)
COMMON: dict[str, tuple[tuple[type, ...], str]] = {
    "n": ((int,), "starts steered"),
    "method": ((str,), "the steering method, from the one vocabulary (latentsteer.methods)"),
    "goals": ((list,), "the goal strings, as given"),
    "success_rate": (
        (float, type(None)),
        "share of starts whose result the certifying oracles confirm on every goal and "
        "constraint (null when no oracle reads a goal: unverified)",
    ),
    "predicted_success_rate": (
        (float, type(None)),
        "the same share by the model's heads (null when the heads read no result)",
    ),
    "success_gap": (
        (float, type(None)),
        "predicted_success_rate - success_rate, signed (over the starts both read)",
    ),
    "oracle_calls": ((float,), "mean oracle calls per start (in the loop, counted)"),
    "model_calls": ((float,), "mean model calls per start (decoder, heads, encoder)"),
    "wall_s": ((float,), "seconds the run took"),
    "in_loop_oracles": ((str,), "what the loop consulted while steering, or 'none'"),
    "certified_by": ((str,), "what graded the results: oracles the loop never saw"),
    "reference_data": ((str,), "the data files or folders the run read, or 'none'"),
}


def check_metrics(metrics: Mapping[str, object]) -> None:
    """Check that ``metrics`` holds every common key with a value of its type.

    Raises:
        ValueError: naming the missing keys or the first key of the wrong type.
    """
    missing = [k for k in COMMON if k not in metrics]
    if missing:
        raise ValueError(f"metrics lack the common keys {', '.join(missing)}")
    for key, (types, _) in COMMON.items():
        value = metrics[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ValueError(f"metrics[{key!r}] = {value!r} is not {types}")
