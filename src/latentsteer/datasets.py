"""``latentsteer.datasets``: the MNIST domain's data sources under the package's short name.

A public facade, kept for users (``from latentsteer.datasets import mnist``, and
``latentsteer.datasets.mnist("test")`` after a plain ``import latentsteer``); the code lives
in :mod:`latentsteer.domains.mnist.datasets`, where the library itself imports it from.

Why a real module: Python imports ``latentsteer.datasets`` only from a file of that name (the
package's lazy ``__getattr__`` serves attribute access, not the import statement), and a
file of re-exports is plain to read, to grep and to type-check, unlike an alias planted in
``sys.modules`` when the package loads, which would have to load the domain then, or hook
the import system to defer it. It is one of the two engine-level modules allowed to import a
domain (``tests/test_layout.py`` lists both, ``latentsteer.morphometry`` the other): each
only re-exports, so the engine proper still imports no domain.
"""

from latentsteer.domains.mnist.datasets import (
    SPLIT_SIZES,
    SPLITS,
    DataConfig,
    Split,
    cache_dir,
    default_root,
    download,
    load_split,
    mnist,
    read_idx,
    verify,
)

__all__ = [
    "SPLITS",
    "SPLIT_SIZES",
    "DataConfig",
    "Split",
    "cache_dir",
    "default_root",
    "download",
    "load_split",
    "mnist",
    "read_idx",
    "verify",
]
