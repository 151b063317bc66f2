"""Reading ``params.yaml`` into the typed dataclass configs.

The library never reads ``params.yaml`` on its own; the pipeline's stage scripts call
:func:`load_params` and :func:`section` and pass the dataclasses on. Every bad value fails
here, with one line naming the key and what is accepted.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from latentsteer.errors import ConfigError

T = TypeVar("T")


def load_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """Parse a params file into a dict of sections.

    Raises:
        ConfigError: missing file, bad YAML, or a top level that is not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p} not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must be a mapping of sections; got {type(data).__name__}")
    return data


def _check(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp`` (the simple types configs use)."""
    origin = get_origin(tp)
    if tp is Any:
        return True
    if origin is Literal:
        return value in get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_check(value, a) for a in get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        (inner, *_) = get_args(tp) or (Any,)
        return isinstance(value, list | tuple) and all(_check(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def section(params: dict[str, Any], name: str, cls: type[T]) -> T:
    """Build the dataclass ``cls`` from ``params[name]``, checking keys and types.

    A missing section or key takes the dataclass default.

    Raises:
        ConfigError: unknown key, wrong type, or a value ``__post_init__`` rejects; the
            message starts with the full key (``labels.scale``).
    """
    values = params.get(name) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"params.yaml: {name} must be a mapping; got {values!r}")
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(
                f"params.yaml: unknown key {name}.{key}; accepted: {', '.join(sorted(fields))}"
            )
        if not _check(value, hints[key]):
            raise ConfigError(
                f"params.yaml: {name}.{key} must be {_describe(hints[key])}; got {value!r}"
            )
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        prefix = "" if msg.startswith(f"{name}.") else f"{name}: "
        raise ConfigError(f"params.yaml: {prefix}{msg}") from None
