"""latentsteer: steer the latent codes of a multi-head VAE towards properties you want,
and verify the results with independent oracles."""

from latentsteer.datasets import mnist
from latentsteer.errors import ConfigError, DataSourceError, LatentsteerError
from latentsteer.model import MultiHeadVAE, load_model
from latentsteer.morphometry import MEASURES, MorphometryConfig, measure

__all__ = [
    "MEASURES",
    "ConfigError",
    "DataSourceError",
    "LatentsteerError",
    "MorphometryConfig",
    "MultiHeadVAE",
    "load_model",
    "measure",
    "mnist",
]
__version__ = "0.1.0"
