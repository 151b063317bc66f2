"""MultiHeadVAE: a VAE of any domain's data with property heads on its code.

The domain (:mod:`latentsteer.domain`) supplies the encoder, the decoder and the
reconstruction likelihood; everything else here is shared: the heads, the code, the
prior, the target scaling, validation of codes, and writing the model folder. A model is
given its domain object; turning a domain's name into that object (a model folder's
``config.json`` names one) is the registry's, one layer up in :mod:`latentsteer.loading`.

The heads read the latent code ``z``. During training each head's loss is averaged over
two codes: the *sampled* code ``z = mu + sigma * eps`` and the posterior mean ``mu``.
Steering later moves codes through the latent space and decodes wherever it lands, so a
head must be right across each posterior's spread, the very region the decoder is trained
to decode; the sample teaches that. The mean term keeps the predictions at encoded codes
sharp (with samples alone the MNIST digit head stalls near 98.8% on validation, because
the noise blurs neighbouring classes). At evaluation and in :meth:`MultiHeadVAE.predict`
the caller passes whatever code it holds (``encode`` returns posterior means).

Regression targets are standardised inside the model (mean and std of the training column,
stored as buffers), so losses are on comparable scales; :meth:`predict` returns original
units.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from latentsteer import registry
from latentsteer.modelio import write_model_folder

if TYPE_CHECKING:
    from latentsteer.domain import Domain

FORMAT = "latentsteer.MultiHeadVAE/1"


@dataclass(frozen=True)
class HeadSpec:
    """One property head (an entry of ``params.yaml: model.heads``)."""

    name: str  # how predict() and objectives refer to it
    kind: Literal["class", "regression"] = "regression"  # classifier or regressor
    column: str = ""  # the Parquet label column it learns from; "" = the one named `name`
    classes: int = 10  # number of classes, for kind "class"
    weight: float = 1.0  # loss weight of this head

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"head name must be an identifier; got {self.name!r}")
        if not self.column:
            object.__setattr__(self, "column", self.name)  # frozen: set once, here
        if self.kind not in ("class", "regression"):
            raise ValueError(
                f"head {self.name}: kind must be class or regression; got {self.kind!r}"
            )
        if self.kind == "class" and self.classes < 2:
            raise ValueError(f"head {self.name}: classes must be at least 2; got {self.classes}")
        if self.weight < 0:
            raise ValueError(f"head {self.name}: weight must be >= 0; got {self.weight}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture (mirrors ``params.yaml: model``)."""

    latent_dim: int = 16  # size of the code z
    channels: int = 32  # conv channels of the first layer (image domains); the second: twice
    hidden: int = 256  # width of the dense layer next to the code (encoder and decoder)
    head_hidden: int = 128  # width of each head's hidden layer
    # The property heads; a domain's own defaults live with it (the MNIST domain's
    # `default_heads()`), and params.yaml lists them.
    heads: tuple[HeadSpec, ...] = ()
    # The kind of data, by its name in latentsteer.registry: that domain builds the encoder
    # and decoder from the sizes above. The registry's default when a config names none.
    domain: str = registry.DEFAULT

    def __post_init__(self) -> None:
        registry.check_name(self.domain)  # a known domain, or one line listing them
        for key in ("latent_dim", "channels", "hidden", "head_hidden"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"model.{key} must be a positive integer; got {value!r}")
        names = [h.name for h in self.heads]
        if len(set(names)) != len(names):
            raise ValueError(f"model.heads: names must be unique; got {names}")


@dataclass
class VAEOutput:
    """What a forward pass returns.

    Attributes:
        logits: ``(B, *sample_shape)`` decoder logits (the domain turns them into samples).
        mu, logvar: ``(B, d)`` posterior parameters.
        z: ``(B, d)`` the code the heads read (a sample in training, ``mu`` in eval mode).
        heads: head name → raw output: ``(B, k)`` logits or ``(B,)`` standardised value.
    """

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    heads: dict[str, torch.Tensor]


class MultiHeadVAE(nn.Module):
    """VAE with property heads. See the module docstring for design choices."""

    def __init__(self, config: ModelConfig, domain: Domain) -> None:
        """Build an untrained model.

        Args:
            config: architecture and heads.
            domain: the domain ``config.domain`` names, as this model's data configure it
                (molecules: with the vocabulary); ``registry.get_domain(config.domain)``
                when they need none.

        Raises:
            ValueError: ``domain`` is not the one ``config`` names.
        """
        super().__init__()
        self.config = cfg = config
        d = cfg.latent_dim
        self.domain = domain
        if self.domain.name != cfg.domain:
            raise ValueError(f"a {self.domain.name} domain cannot build a {cfg.domain} model")
        # Encoder first, then decoder, then heads: the order weights are drawn in.
        self.encoder, self.decoder = self.domain.networks(cfg)
        self.heads = nn.ModuleDict(
            {
                h.name: nn.Sequential(
                    nn.Linear(d, cfg.head_hidden),
                    nn.SiLU(),
                    nn.Linear(cfg.head_hidden, cfg.head_hidden),
                    nn.SiLU(),
                    nn.Linear(cfg.head_hidden, h.classes if h.kind == "class" else 1),
                )  # fmt: skip
                for h in cfg.heads
            }
        )
        n_reg = len(cfg.heads)
        # Standardisation of regression targets; set from the training data before fitting.
        self.register_buffer("target_mean", torch.zeros(n_reg))
        self.register_buffer("target_std", torch.ones(n_reg))

    # ------------------------------------------------------------------ core
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return self.target_mean.device

    def set_target_scaling(self, targets: dict[str, torch.Tensor]) -> None:
        """Store mean and std of each regression head's training targets (keyed by head)."""
        for i, h in enumerate(self.config.heads):
            if h.kind == "regression":
                col = targets[h.name].double()
                self.target_mean[i] = col.mean()
                self.target_std[i] = col.std().clamp_min(1e-6)

    def standardise(self, head: str, values: torch.Tensor) -> torch.Tensor:
        i = self._head_index(head)
        return (values - self.target_mean[i]) / self.target_std[i]

    def _head_index(self, name: str) -> int:
        for i, h in enumerate(self.config.heads):
            if h.name == name:
                return i
        raise ValueError(f"unknown head {name!r}; this model has {', '.join(self.head_names)}")

    @property
    def head_names(self) -> list[str]:
        return [h.name for h in self.config.heads]

    def head_spec(self, name: str) -> HeadSpec:
        return self.config.heads[self._head_index(name)]

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, *sample_shape)`` → ``(mu (B, d), logvar (B, d))``."""
        stats = self.encoder(x)  # (B, 2d)
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """``z (B, d)`` → ``(B, *sample_shape)`` logits."""
        return self.decoder(z)

    def head_outputs(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs: ``(B, k)`` logits or ``(B,)`` standardised values."""
        out = {}
        for h in self.config.heads:
            y = self.heads[h.name](z)
            out[h.name] = y if h.kind == "class" else y.squeeze(1)
        return out

    def forward(self, x: torch.Tensor) -> VAEOutput:
        """Encode, sample (in training mode; ``mu`` in eval mode), decode and run the heads.

        Args:
            x: ``(B, *sample_shape)`` samples.
        """
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return VAEOutput(self.decode_logits(z), mu, logvar, z, self.head_outputs(z))

    # ------------------------------------------------------------------ public contract
    def as_samples(self, samples: object) -> torch.Tensor:
        """Validate user samples ``(n, *sample_shape)`` (the domain's rules) on this device."""
        x = torch.as_tensor(samples, dtype=torch.float32, device=self.device)
        return self.domain.check_samples(x)

    def _as_codes(self, z: object) -> torch.Tensor:
        t = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        if t.ndim != 2 or t.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (n, {self.latent_dim}); got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError("z contains NaN or infinite values")
        return t

    @torch.no_grad()
    def encode(self, samples: object, batch_size: int = 1024) -> torch.Tensor:
        """Posterior means of samples ``(n, *sample_shape)`` → ``(n, d)``."""
        x = self.as_samples(samples)
        return (
            torch.cat([self.posterior(b)[0] for b in x.split(batch_size)])
            if len(x)
            else (torch.zeros(0, self.latent_dim, device=self.device))
        )

    def decode(self, z: object) -> torch.Tensor:
        """Codes ``(n, d)`` → samples ``(n, *sample_shape)`` (differentiable)."""
        return self.domain.to_samples(self.decode_logits(self._as_codes(z)))

    def predict(self, z: object) -> dict[str, torch.Tensor]:
        """Head predictions at codes ``(n, d)`` (differentiable).

        Returns:
            head name → ``(n, k)`` class probabilities, or ``(n,)`` values in original units.
        """
        out = {}
        raw = self.head_outputs(self._as_codes(z))
        for i, h in enumerate(self.config.heads):
            if h.kind == "class":
                out[h.name] = raw[h.name].softmax(dim=1)
            else:
                out[h.name] = raw[h.name] * self.target_std[i] + self.target_mean[i]
        return out

    def sample_prior(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` seeded draws from the standard-normal prior → ``(n, d)``."""
        g = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.latent_dim, generator=g).to(self.device)


# ---------------------------------------------------------------------- save


def model_config_from_dict(data: dict) -> ModelConfig:
    """A model config from its ``config.json`` entry (:func:`latentsteer.loading.load_model`
    reads folders)."""
    heads = tuple(HeadSpec(**h) for h in data.get("heads", []))
    rest = {k: v for k, v in data.items() if k != "heads"}
    return ModelConfig(**rest, heads=heads)


def save_model(
    model: MultiHeadVAE, path: str | os.PathLike[str], metrics: dict | None = None
) -> None:
    """Write the model folder atomically: ``config.json``, ``weights.pt``, ``metrics.json``."""
    write_model_folder(
        path, FORMAT, asdict(model.config), model.state_dict(), metrics,
        extra=model.domain.config_entries(),
    )  # fmt: skip


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per sample: ``(B, d)`` → ``(B,)`` nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bernoulli negative log-likelihood of values in [0, 1], per sample: ``(B,)`` nats."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
