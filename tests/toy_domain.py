"""A toy domain that runs the whole domain contract: noisy straight lines on 16 points.

A sample is a curve ``y(t) = level + slope · t + noise`` at 16 points ``t ∈ [−1, 1]``. Its
properties are computable exactly, so its oracle is a formula, not a model:

* ``level``: the curve's mean; ``slope``: its least-squares slope;
* ``rising``: class 1 when the slope is positive; the oracle's "judge" gives
  ``sigmoid(slope / 0.05)``, a soft reading of the same rule.

Nothing here is in the shared engine: this file is what a user writes for their own data
(see ``docs/howto/add-a-domain.md``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pandas as pd
import torch
from torch import nn

from latentsteer.domain import Domain, OracleReport
from latentsteer.experiment import Context
from latentsteer.loading import load_model
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE
from latentsteer.optimize_config import OptimizeConfig
from latentsteer.plots import plt, save_figure
from latentsteer.train import Dataset

POINTS = 16
T = torch.linspace(-1.0, 1.0, POINTS)  # (16,)
NOISE = 0.05


def curves(n: int, seed: int = 0) -> torch.Tensor:
    """``(n, 16)`` seeded noisy lines with level and slope drawn from U(−1, 1)."""
    g = torch.Generator().manual_seed(seed)
    level = torch.rand(n, 1, generator=g) * 2 - 1
    slope = torch.rand(n, 1, generator=g) * 2 - 1
    return level + slope * T + NOISE * torch.randn(n, POINTS, generator=g)


def measure(x: torch.Tensor) -> pd.DataFrame:
    """The exact properties of ``(n, 16)`` curves: ``level`` and ``slope``."""
    x = x.detach().double().cpu()
    t = T.double() - T.double().mean()
    slope = (x * t).sum(1) / (t * t).sum()
    return pd.DataFrame({"level": x.mean(1).numpy(), "slope": slope.numpy()})


def dataset(n: int, seed: int = 0) -> Dataset:
    """Curves with one target per head of :data:`HEADS`."""
    x = curves(n, seed)
    table = measure(x)
    targets = {
        "level": torch.tensor(table.level.to_numpy(), dtype=torch.float32),
        "slope": torch.tensor(table.slope.to_numpy(), dtype=torch.float32),
        "rising": torch.tensor((table.slope > 0).to_numpy(), dtype=torch.int64),
    }
    return Dataset(x, targets)


HEADS = (
    HeadSpec("level", "regression", "level"),
    HeadSpec("slope", "regression", "slope"),
    HeadSpec("rising", "class", "rising", classes=2),
)


class LineOracle:
    """Measures level and slope; reads ``rising`` from the slope (never from the model)."""

    measures = ("level", "slope")
    class_column = "rising"
    describe = "measures, slope rule"

    def probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        return self.log_probabilities(samples).exp()

    def log_probabilities(self, samples: torch.Tensor) -> torch.Tensor:
        t = T.to(samples.device) - T.mean()
        slope = (samples * t).sum(1) / (t * t).sum()  # (n,)
        return torch.stack([-slope / 0.05, slope / 0.05], 1).log_softmax(1)  # (n, 2)

    def read(
        self, samples: torch.Tensor, workers: int | None = None, properties=None
    ) -> OracleReport:
        probs = self.probabilities(samples.detach().cpu()).numpy()
        table = measure(samples.detach().cpu())
        if properties is not None:
            table = table[list(properties)]
        return OracleReport(table, probs.argmax(1), probs.max(1), probs, self.class_column)

    def embed(self, samples: torch.Tensor) -> torch.Tensor:
        return samples.detach().float().cpu()  # the curve itself is a fine feature vector


class LineDomain(Domain):
    """Noisy straight lines; see the module docstring."""

    name = "toy"
    sample_shape = (POINTS,)
    tolerances = {"level": 0.1, "slope": 0.1}
    match_on = "level"

    def networks(self, config: ModelConfig) -> tuple[nn.Module, nn.Module]:
        h, d = config.hidden, config.latent_dim
        encoder = nn.Sequential(nn.Linear(POINTS, h), nn.SiLU(), nn.Linear(h, 2 * d))
        decoder = nn.Sequential(nn.Linear(d, h), nn.SiLU(), nn.Linear(h, POINTS))
        return encoder, decoder

    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((logits - x) / NOISE).pow(2).sum(1)  # Gaussian, up to a constant

    def save_grid(self, samples: torch.Tensor, path: str | os.PathLike[str]) -> None:
        rows, cols = samples.shape[:2]
        fig, axes = plt.subplots(rows, cols, figsize=(cols, rows), squeeze=False)
        for i in range(rows):
            for j in range(cols):
                axes[i, j].plot(T.numpy(), samples[i, j].numpy())
                axes[i, j].set_axis_off()
        save_figure(fig, path)

    def load_context(
        self,
        model_dir: str | os.PathLike[str],
        settings: OptimizeConfig,
        sources: Mapping[str, str | os.PathLike[str] | None],
        cached: str | os.PathLike[str] | None = None,
    ) -> Context:
        model = load_model(model_dir)
        reference = curves(200, seed=99)
        oracle = LineOracle()
        labels = oracle.read(reference)
        return Context(
            model, oracle, reference, labels.label, labels.measures.level.to_numpy(),
            model.encode(curves(200, seed=98)), None, 1,
        )  # fmt: skip


TOY = LineDomain()


def tiny_config(**kwargs: object) -> ModelConfig:
    return ModelConfig(latent_dim=2, hidden=32, head_hidden=16, heads=HEADS, domain="toy", **kwargs)  # type: ignore[arg-type]


def make_model() -> MultiHeadVAE:
    torch.manual_seed(0)
    return MultiHeadVAE(tiny_config(), TOY)
