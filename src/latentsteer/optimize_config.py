"""Settings shared by every ``optimize@<experiment>`` stage (``params.yaml: optimize``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OptimizeConfig:
    """Mirrors ``params.yaml: optimize``."""

    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N
    reference: int = 5000  # last N test digits: the realism score's real reference set
    knn_codes: int = 10000  # first N training digits, encoded: the kNN safeguard's codes
    workers: int | None = None  # processes for the Morpho-MNIST measures; null = all cores

    def __post_init__(self) -> None:
        for key in ("reference", "knn_codes"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"optimize.{key} must be an integer >= 2; got {value!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"optimize.workers must be positive or null; got {self.workers!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(
                f"optimize.device must be auto, cpu, cuda or cuda:N; got {self.device!r}"
            )
