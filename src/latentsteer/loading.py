"""Where domain names become domains: model folders are read here.

A model is given its domain object (:class:`~latentsteer.model.MultiHeadVAE` takes it);
a saved folder's ``config.json`` names its domain, and the registry
(:mod:`latentsteer.registry`) turns that name into the domain, configured by the folder's
other entries (molecules: the vocabulary). This layer sits above the model, which reads the
registry only to check that a config names a known domain, never to fetch one.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from latentsteer.model import FORMAT, ModelConfig, MultiHeadVAE, model_config_from_dict
from latentsteer.modelio import read_model_folder
from latentsteer.registry import get_domain


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> MultiHeadVAE:
    """Rebuild a saved :class:`MultiHeadVAE` from its folder (weights-only loading).

    Raises:
        LatentsteerError: missing files, a foreign or damaged checkpoint, an unknown domain,
            or weights that do not fit the config — one line saying which.
    """
    return read_model_folder(
        path, FORMAT, lambda cfg, meta: build_model(model_config_from_dict(cfg), meta), device
    )


def build_model(config: ModelConfig, entries: dict[str, Any]) -> MultiHeadVAE:
    """An untrained model of ``config``, its domain configured by a folder's ``config.json``
    ``entries`` (molecules: the vocabulary)."""
    return MultiHeadVAE(config, get_domain(config.domain).configured(entries))
