"""What the layers see of each other, as typing protocols; a leaf that imports nothing of
latentsteer.

The domain contract (:mod:`latentsteer.domain`) sits below the model, the steering context
and the experiment settings: a domain builds the model's networks and reads starts through
the model, so :mod:`latentsteer.model` imports the contract, never the other way round. Where
the contract's signatures name those objects, they name them through the protocols below:
structural types that :class:`~latentsteer.model.ModelConfig`,
:class:`~latentsteer.model.MultiHeadVAE`, :class:`~latentsteer.optimize_config.OptimizeConfig`
and :class:`~latentsteer.context.Context` satisfy without naming them. Each protocol lists
what a domain may use, and no more; the attributes are read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import torch


class ModelShape(Protocol):
    """A model's architecture as a domain's networks read it (``params.yaml: model``)."""

    @property
    def latent_dim(self) -> int:
        """Size of the code ``z``."""
        ...

    @property
    def channels(self) -> int:
        """Channels of the encoder's first layer, where the networks have channels."""
        ...

    @property
    def hidden(self) -> int:
        """Width of the dense layers next to the code (encoder and decoder)."""
        ...


class LatentModel(Protocol):
    """A trained model as a domain sees it: samples in, codes out, and prior draws."""

    @property
    def latent_dim(self) -> int:
        """Size of the code ``z``."""
        ...

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        ...

    def encode(self, samples: object, batch_size: int = 1024) -> torch.Tensor:
        """Posterior means of samples ``(n, *sample_shape)`` → ``(n, d)``."""
        ...

    def decode(self, z: object) -> torch.Tensor:
        """Codes ``(n, d)`` → samples ``(n, *sample_shape)``."""
        ...

    def sample_prior(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` seeded draws from the prior → ``(n, d)``."""
        ...


class ContextSettings(Protocol):
    """The settings a domain's steering context is loaded with (``params.yaml: optimize``)."""

    @property
    def device(self) -> str:
        """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
        ...

    @property
    def reference(self) -> int:
        """How many real samples form the realism reference."""
        ...

    @property
    def knn_codes(self) -> int:
        """How many encoded training samples the kNN safeguard reads."""
        ...

    @property
    def workers(self) -> int | None:
        """Processes for the oracles' measures (``None``: every core)."""
        ...


class SteeringContext(Protocol):
    """What a domain's :meth:`~latentsteer.domain.Domain.load_context` returns: the model
    and the data every experiment reads besides its settings (its oracles as well: see
    :class:`latentsteer.context.Context`)."""

    @property
    def model(self) -> LatentModel:
        """The trained model."""
        ...

    @property
    def reference(self) -> torch.Tensor:
        """``(m, *sample_shape)`` real samples for the realism score."""
        ...

    @property
    def train_codes(self) -> torch.Tensor:
        """``(k, d)`` encoded training samples, for the kNN safeguard."""
        ...

    @property
    def data_root(self) -> str | Path | None:
        """Where the domain reads test starts from."""
        ...

    @property
    def workers(self) -> int | None:
        """Processes for the oracles' measures."""
        ...
