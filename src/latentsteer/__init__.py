"""latentsteer: steer the latent codes of a multi-head VAE towards properties you want,
and verify the results with independent oracles."""

from __future__ import annotations

import importlib
from typing import Any

from latentsteer.errors import ConfigError, DataSourceError, LatentsteerError

# The public names load on first use (PEP 562), so importing the measures in a
# spawned measuring worker does not pay for torch and torchvision (about 3 s per worker).
# The MNIST conveniences come through the facades latentsteer.datasets and
# latentsteer.morphometry (real modules, so `import latentsteer.datasets` works too): this
# file names no domain module.
_LAZY = {
    "mnist": "latentsteer.datasets",
    "MultiHeadVAE": "latentsteer.model",
    "load_model": "latentsteer.loading",
    "register": "latentsteer.registry",
    "MEASURES": "latentsteer.morphometry",
    "MorphometryConfig": "latentsteer.morphometry",
    "measure": "latentsteer.morphometry",
    "steer": "latentsteer.request",
    "fit_property": "latentsteer.learned.fit",
}

__all__ = ["ConfigError", "DataSourceError", "LatentsteerError", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Submodules load on first use as well: `latentsteer.datasets.mnist(...)` or
    # `latentsteer.report` after a plain `import latentsteer`.
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        try:
            value = importlib.import_module(f"latentsteer.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'latentsteer' has no attribute {name!r}") from None
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
