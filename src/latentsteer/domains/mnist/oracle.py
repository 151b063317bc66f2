"""The MNIST oracles behind :class:`latentsteer.domain.Oracle`: Morpho-MNIST measures of the
image and a digit judge (a separately trained data-space CNN)."""

from __future__ import annotations

import torch

from latentsteer.domain import OracleReport
from latentsteer.domains.mnist.judge import Judge
from latentsteer.domains.mnist.morphometry import MEASURES, MorphometryConfig, measure

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
    """

    measures = MEASURES
    class_column = "digit"

    def __init__(
        self, judge: Judge, config: MorphometryConfig | None = None, name: str = "judge"
    ) -> None:
        self.judge, self.config = judge, config
        self.describe = f"measures, {name}"

    def read(self, samples: torch.Tensor, workers: int | None = None) -> OracleReport:
        """Measure and judge ``(n, 28, 28)`` images in [0, 1].

        ``workers=None`` measures batches under ``IN_PROCESS_BELOW`` images in this process
        and larger ones on every core.
        """
        x = samples.detach().float().cpu().clamp(0, 1)
        probs = self.judge.probabilities(x).cpu().numpy()
        if workers is None and len(x) < IN_PROCESS_BELOW:
            workers = 1
        table = measure(x.numpy(), workers=workers, config=self.config, progress=False)
        return OracleReport(table, probs.argmax(1), probs.max(1), probs, self.class_column)

    def probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        """``(n, 10)`` the judge's probabilities."""
        return self.judge.probabilities(samples)

    def log_probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        """``(n, 10)`` the judge's log-probabilities, differentiable in the images."""
        return self.judge(samples).log_softmax(1)

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
