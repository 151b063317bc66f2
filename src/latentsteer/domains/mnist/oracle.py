"""The MNIST oracles behind :class:`latentsteer.domain.Oracle`: Morpho-MNIST measures of the
image and a digit judge (a separately trained data-space CNN).

Two implementations of the measures, the same definitions:

* ``tensors`` (:mod:`.tensor_measures`): the whole batch as one tensor program on the
  judge's device, each image's medial axis exactly as scikit-image gives it for that image
  alone, and only the measures asked for. The in-loop oracle uses it: it reads the moving
  samples every few steps, and only the properties the goals name.
* ``scikit-image`` (:func:`.morphometry.measure`): scikit-image's compiled medial axis on
  mosaics of many images, in worker processes for large batches, every measure. The
  ``labels`` stage and the certifier use it, so what grades a result is the code the
  heads' labels came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from latentsteer.domain import OracleReport
from latentsteer.domains.mnist.judge import InferenceJudge, Judge
from latentsteer.domains.mnist.morphometry import MEASURES, MorphometryConfig, measure
from latentsteer.domains.mnist.tensor_measures import measure_tensors, needs

MeasuresBy = Literal["tensors", "scikit-image"]

# Starting the measuring worker processes takes seconds, more than measuring a few thousand
# images in this process.
IN_PROCESS_BELOW = 3000


class DigitOracle:
    """Measures and judges 28×28 digits.

    Args:
        judge: the digit classifier that reads the class (the guide judge in the closed
            loop, or the certifier that grades results).
        config: how to measure: the definition the heads were fitted to (the ``labels``
            stage's); ``None`` means :class:`MorphometryConfig`'s defaults.
        name: what the judge is called in ``metrics.json`` (``judge``, ``certifier``).
        measures_by: which implementation measures (see the module docstring); named in
            ``metrics.json`` with the judge.
    """

    measures = MEASURES
    class_column = "digit"

    def __init__(
        self,
        judge: Judge,
        config: MorphometryConfig | None = None,
        name: str = "judge",
        measures_by: MeasuresBy = "tensors",
    ) -> None:
        if measures_by not in ("tensors", "scikit-image"):
            raise ValueError(f"measures_by must be tensors or scikit-image; got {measures_by!r}")
        self.judge, self.config, self.measures_by = judge, config, measures_by
        self.describe = f"measures ({measures_by}), {name}"
        self._fast: InferenceJudge | None = None  # built on first use, weights frozen then

    def read(
        self,
        samples: torch.Tensor,
        workers: int | None = None,
        properties: Sequence[str] | None = None,
    ) -> OracleReport:
        """Measure and judge ``(n, 28, 28)`` images in [0, 1].

        Args:
            samples: the images, on any device.
            workers: for ``scikit-image``, ``None`` measures batches under
                ``IN_PROCESS_BELOW`` images in this process and larger ones on every core;
                for ``tensors``, threads on the CPU (``None``: one per core).
            properties: the measures to read (others are left out of the report);
                ``None`` reads all of :data:`MEASURES`.
        """
        wanted = MEASURES if properties is None else tuple(properties)
        unknown = sorted(set(wanted) - set(MEASURES))
        if unknown:
            raise ValueError(f"not a measure: {', '.join(unknown)}; the measures: "
                             f"{', '.join(MEASURES)}")  # fmt: skip
        x = samples.detach().float().clamp(0, 1)
        probs = self.judge.probabilities(x.to(self.judge.device)).cpu().numpy()
        if self.measures_by == "tensors":
            table = measure_tensors(x.to(self.judge.device), wanted, self.config, workers)
        else:
            if workers is None and len(x) < IN_PROCESS_BELOW:
                workers = 1
            table = measure(x.cpu().numpy(), workers=workers, config=self.config, progress=False)
            table = table[list(needs(wanted))]
        return OracleReport(table, probs.argmax(1), probs.max(1), probs, self.class_column)

    def probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        """``(n, 10)`` the judge's probabilities."""
        return self.judge.probabilities(samples)

    def log_probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        """``(n, 10)`` the judge's log-probabilities, differentiable in the images (by the
        judge's :class:`~.judge.InferenceJudge`: the loop calls this at every step)."""
        if not isinstance(self.judge, Judge):  # a stand-in with only a forward
            return self.judge(samples).log_softmax(1)
        if self._fast is None:
            self._fast = InferenceJudge(self.judge).to(self.judge.device)
        return self._fast(samples).log_softmax(1)

    def embed(self, samples: torch.Tensor) -> torch.Tensor:
        """``(n, 128)`` the judge's penultimate features."""
        return self.judge.embed(samples)


def read(
    images: torch.Tensor,
    judge: Judge,
    workers: int | None = None,
    config: MorphometryConfig | None = None,
) -> OracleReport:
    """:meth:`DigitOracle.read` in one call."""
    return DigitOracle(judge, config).read(images, workers)
