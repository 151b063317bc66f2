"""``latentsteer.morphometry``: the MNIST domain's Morpho-MNIST measures under the package's
short name.

A public facade, kept for users (``from latentsteer.morphometry import measure``, and
``latentsteer.morphometry.measure(...)`` after a plain ``import latentsteer``); the code
lives in :mod:`latentsteer.domains.mnist.morphometry`, where the library itself imports it
from. It loads no torch, so a measuring worker that imports it stays light.

Why a real module: see :mod:`latentsteer.datasets`, the other of the two engine-level
modules allowed to import a domain (``tests/test_layout.py`` lists both); each only
re-exports, so the engine proper still imports no domain.
"""

from latentsteer.domains.mnist.morphometry import (
    MEASURES,
    MorphometryConfig,
    as_image_batch,
    measure,
)

__all__ = ["MEASURES", "MorphometryConfig", "as_image_batch", "measure"]
