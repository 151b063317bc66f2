"""Reading ``params.yaml`` into the typed dataclass configs.

The library never reads ``params.yaml`` on its own; the pipeline's stage scripts call
:func:`load_params` and :func:`section` and pass the dataclasses on. Every bad value fails
here, with one line naming the key and what is accepted.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import pydantic
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


def _for_pydantic(tp: Any) -> Any:
    """``tp`` as pydantic should check it, strictly, with our rules where they differ.

    Pydantic's strict mode already holds an int and a str apart from a bool and checks
    ``Literal`` choices, ``None`` and unions. Ours differ in four places: a float is an int
    or a float (pydantic's strict float also takes ``Decimal``, numpy scalars, ``np.bool_``);
    a list or a tuple fits either hint (YAML gives lists), its items checked against the
    first type argument; a dict's contents are left to ``__post_init__`` (``oracle_tol``
    checks its own); any other class (``HeadSpec``) must be an instance. A hint that is no
    type (a ``TypeVar``) takes anything, as before.
    """
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_for_pydantic(a) for a in get_args(tp))]  # noqa: UP007
    if origin in (list, tuple):
        (inner, *_) = get_args(tp) or (Any,)
        inner = _for_pydantic(inner)
        return list[inner] | tuple[inner, ...]
    if origin is dict:
        return dict
    if tp is float:  # pydantic's strict float takes anything with __float__ (np.bool_)
        return int | pydantic.InstanceOf[float]
    if tp is Any or origin is Literal or tp in (bool, int, str, type(None)):
        return tp
    if isinstance(tp, type):
        return pydantic.InstanceOf[tp]
    return Any


@functools.cache
def _adapter(tp: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(_for_pydantic(tp))


def _check(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp``; pydantic checks, the value is kept."""
    try:
        _adapter(tp).validate_python(value, strict=True)
    except pydantic.ValidationError:
        return False
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
        # A config shared by two sections (molecules.train is a TrainConfig) names its keys
        # by the short name ("train.epochs"): say the full key.
        short = name.rsplit(".", 1)[-1]
        if short != name and msg.startswith(f"{short}.") and not msg.startswith(f"{name}."):
            msg = name + msg[len(short) :]
        prefix = "" if msg.startswith(f"{name}.") else f"{name}: "
        raise ConfigError(f"params.yaml: {prefix}{msg}") from None
