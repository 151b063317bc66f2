"""Command-line flags generated from a config dataclass, so the CLI cannot drift from it.

Every field becomes ``--field-name``; its help is the field's own comment in the source, and
a flag the user does not give is left out of the namespace (``argparse.SUPPRESS``), so only
given flags reach the config and a default changed in the dataclass is the CLI's default too.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

_FIELD = re.compile(r"^\s+(\w+):[^#]*#\s*(.+)$")


def field_comments(cls: type) -> dict[str, str]:
    """``{field: its trailing comment}`` read from the dataclass's source."""
    out: dict[str, str] = {}
    for line in inspect.getsource(cls).splitlines():
        if m := _FIELD.match(line):
            out.setdefault(m.group(1), m.group(2).strip())
    return out


def _parse_mapping(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return key.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER; got {text!r}") from None


def _optional(kind: type) -> Any:
    def parse(text: str) -> Any:
        if text.lower() in ("none", "null", "off"):
            return None
        try:
            return kind(text)
        except ValueError:
            msg = f"expected {kind.__name__} or none; got {text!r}"
            raise argparse.ArgumentTypeError(msg) from None

    parse.__name__ = kind.__name__
    return parse


def add_config_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    skip: tuple[str, ...] = (),
    domain_defaults: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Add one flag per field of the dataclass ``cls`` (except ``skip``).

    Args:
        domain_defaults: per domain name, the fields whose default differs for its models
            (shown in the help next to the field's own default).

    Returns:
        The field names that got flags (read them back with :func:`given`).
    """
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        hint, flag = hints[f.name], "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        others = "".join(f"; {name}: {own[f.name]}" for name, own in (domain_defaults or {}).items()
                         if f.name in own)  # fmt: skip
        help_text = f"{comments.get(f.name, '')} (default: {default}{others})".strip()
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": f.name, "help": help_text}
        args = get_args(hint)
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif get_origin(hint) is Literal:
            kwargs["choices"] = list(args)
        elif hint in (int, float, str):
            kwargs["type"] = hint
        elif type(None) in args and len(args) == 2:
            kwargs["type"] = _optional(next(a for a in args if a is not type(None)))
        elif get_origin(hint) is dict:
            kwargs.update(type=_parse_mapping, action="append", metavar="NAME=NUMBER")
        else:
            continue  # no flag for this type
        parser.add_argument(flag, **kwargs)
        names.append(f.name)
    return names


def given(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The config fields the user set on the command line."""
    out = {}
    for name in names:
        if hasattr(args, name):
            value = getattr(args, name)
            out[name] = dict(value) if isinstance(value, list) else value
    return out
