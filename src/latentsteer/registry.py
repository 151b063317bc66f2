"""Domains by name: model folders record one, and the engine looks it up here.

Built-in domains are listed as ``"module:attribute"`` strings and imported on first use, so
the engine never imports a domain module itself (``tests/test_layout.py`` checks that).
A user's own domain is added with :func:`register` before a model of it is built or loaded,
or declared once by its package as an entry point in the group ``latentsteer.domains``
(``toy = "mypackage.toy:TOY"`` in its ``pyproject.toml``), which the CLI and the stages
then find without any code of the user's running first.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from latentsteer.domain import Domain
from latentsteer.errors import LatentsteerError
from latentsteer.modelio import read_model_entry

BUILT_IN = {
    "mnist": "latentsteer.domains.mnist.domain:MNIST",
}
# The domain of a model config that names none: folders written before domains existed, and
# params whose `model` section has no `domain`, hold MNIST models.
DEFAULT = "mnist"

_registered: dict[str, Domain] = {}


def register(domain: Domain) -> Domain:
    """Make ``domain`` known by its ``name`` (replacing an earlier one of that name).

    Raises:
        ValueError: a domain without a name, or not a :class:`Domain`.
    """
    if not isinstance(domain, Domain) or not domain.name:
        raise ValueError(f"register() takes a named Domain; got {domain!r}")
    _registered[domain.name] = domain
    return domain


GROUP = "latentsteer.domains"  # entry points of installed packages' domains


def _declared() -> dict[str, str]:
    """Built-in domains and those installed packages declare, name → ``module:attribute``."""
    return {**{e.name: e.value for e in entry_points(group=GROUP)}, **BUILT_IN}


def names() -> list[str]:
    """The names of every known domain: built-in, declared by packages, and registered."""
    return sorted({*_declared(), *_registered})


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown domain {name!r}; known: {', '.join(names())}")


def check_name(name: str) -> str:
    """``name`` when a domain of that name is known (without importing it).

    Raises:
        ValueError: no such domain (one line listing the known ones).
    """
    if name not in _registered and name not in _declared():
        raise _unknown(name)
    return name


def get_domain(name: str) -> Domain:
    """The domain called ``name``.

    Raises:
        ValueError: no such domain (one line listing the known ones).
    """
    if name not in _registered:
        declared = _declared()
        if name not in declared:
            raise _unknown(name)
        module, attr = declared[name].split(":")
        _registered[name] = getattr(importlib.import_module(module), attr)
    return _registered[name]


def domain_of(model_dir: str | os.PathLike[str]) -> Domain:
    """The domain a model folder records (``config.json``: ``model.domain``); folders
    written before domains existed hold MNIST models.

    Raises:
        LatentsteerError: not a model folder, or a domain this installation does not know.
    """
    config = read_model_entry(model_dir, "model")
    name = config.get("domain", DEFAULT) if isinstance(config, dict) else DEFAULT
    try:
        return get_domain(name)
    except ValueError as err:
        raise LatentsteerError(f"{model_dir}: {err}") from None


def domain_for_file(path: str | os.PathLike[str]) -> Domain:
    """The domain whose sample files end like ``path`` (``file_suffixes``); the default
    domain (MNIST, whose samples may also be a folder of PNGs) when none does.

    Raises:
        ValueError: the suffix is claimed by more than one domain (one line: pass a domain).
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    found = [d for d in map(get_domain, names()) if suffix and suffix in d.file_suffixes]
    if len(found) > 1:
        listed = ", ".join(d.name for d in found)
        raise ValueError(f"{suffix} files belong to several domains ({listed}); pass --domain")
    return found[0] if found else get_domain(DEFAULT)
