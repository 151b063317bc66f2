"""Which device a stage runs on: ``auto`` is CUDA when present, else the CPU.

Its own module, so that stages which only pick a device (judges, evaluation) do not depend
on the training loop.
"""

from __future__ import annotations

import torch

from latentsteer.errors import LatentsteerError


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; a named CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LatentsteerError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)
