"""latentsteer: steer the latent codes of a multi-head VAE towards properties you want,
and verify the results with independent oracles."""

from __future__ import annotations

import importlib
from typing import Any

from latentsteer.errors import ConfigError, DataSourceError, LatentsteerError

# The public names load on first use (PEP 562), so importing the measures in a
# spawned measuring worker does not pay for torch and torchvision (about 3 s per worker).
_LAZY = {
    "mnist": "latentsteer.domains.mnist.datasets",
    "MultiHeadVAE": "latentsteer.model",
    "load_model": "latentsteer.model",
    "register": "latentsteer.registry",
    "MEASURES": "latentsteer.domains.mnist.morphometry",
    "MorphometryConfig": "latentsteer.domains.mnist.morphometry",
    "measure": "latentsteer.domains.mnist.morphometry",
    "steer": "latentsteer.request",
}

__all__ = ["ConfigError", "DataSourceError", "LatentsteerError", *_LAZY]
__version__ = "0.1.0"


# Submodules by their short names, loaded on first use: `latentsteer.datasets.mnist(...)`
# after a plain `import latentsteer`, as for the engine's own modules (`latentsteer.report`).
_SUBMODULES = {
    "datasets": "latentsteer.domains.mnist.datasets",
    "morphometry": "latentsteer.domains.mnist.morphometry",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name])
    else:
        try:
            value = importlib.import_module(f"latentsteer.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'latentsteer' has no attribute {name!r}") from None
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
