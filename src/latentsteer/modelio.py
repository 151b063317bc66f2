"""Saved models are folders: ``config.json``, ``weights.pt`` (a state dict) and ``metrics.json``.

``config.json`` holds ``format`` and ``model`` (what :func:`read_model_folder` rebuilds), and
may hold further entries that describe how the model was made, such as ``measure``: the
Morpho-MNIST settings its heads were calibrated to (:func:`read_model_entry`).

Weights are read with ``torch.load(weights_only=True)``: a file we did not write can at worst
fail to load, never run code. Every way a folder can be wrong becomes one readable line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from latentsteer.atomic import atomic_dir
from latentsteer.errors import LatentsteerError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
METRICS_FILE = "metrics.json"

M = TypeVar("M", bound=torch.nn.Module)


def write_model_folder(
    path: str | os.PathLike[str],
    fmt: str,
    config: dict[str, Any],
    state: dict[str, torch.Tensor],
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a model folder atomically (an interrupted write leaves the old folder).

    Args:
        extra: further top-level entries of ``config.json`` (not ``format`` or ``model``).
    """
    extra = extra or {}
    if {"format", "model"} & extra.keys():
        raise ValueError("extra config.json entries cannot be named 'format' or 'model'")
    with atomic_dir(path) as tmp:
        (tmp / CONFIG_FILE).write_text(
            json.dumps({"format": fmt, "model": config, **extra}, indent=2) + "\n"
        )
        torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp / WEIGHTS_FILE)
        text = json.dumps(metrics or {}, indent=2, sort_keys=True) + "\n"
        (tmp / METRICS_FILE).write_text(text)


def torch_load_safely(path: Path, what: str = "weights file") -> object:
    """``torch.load(weights_only=True)``, with damaged or foreign files as one clear line."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or unsafe files
        text = str(exc).strip()
        reason = text.splitlines()[0][:200] if text else type(exc).__name__
        raise LatentsteerError(
            f"{path} is not a readable {what} (damaged, or not written by latentsteer: {reason})"
        ) from None


def read_model_folder(
    path: str | os.PathLike[str],
    fmt: str,
    build: Callable[[dict[str, Any], dict[str, Any]], M],
    device: str | torch.device = "cpu",
) -> M:
    """Rebuild a model from its folder.

    Args:
        path: the folder.
        fmt: the format tag the config must carry (e.g. ``latentsteer.MultiHeadVAE/1``).
        build: makes an untrained model from the stored model config and the whole
            ``config.json`` (whose other entries some domains need, e.g. a vocabulary).
        device: where to put it; it is returned in eval mode.

    Raises:
        LatentsteerError: missing files, bad JSON, a foreign format, a damaged weights file,
            or weights that do not fit the config.
    """
    folder = Path(path)
    cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not cfg_path.is_file() or not w_path.is_file():
        raise LatentsteerError(
            f"{folder} is not a model folder (needs {CONFIG_FILE} and {WEIGHTS_FILE}); "
            "train one with `dvc repro`"
        )
    try:
        meta = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LatentsteerError(f"{cfg_path} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise LatentsteerError(f"{cfg_path} is not a {fmt} folder (format: {found!r})")
    try:
        model = build(meta["model"], meta)
    except (TypeError, ValueError, KeyError) as exc:
        raise LatentsteerError(f"{cfg_path} has a bad model config ({exc})") from None
    state = torch_load_safely(w_path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LatentsteerError(f"{w_path} does not hold a state dict of tensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise LatentsteerError(f"{w_path} does not fit {cfg_path} ({first})") from None
    return model.to(device).eval()


def read_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``metrics.json`` of a model folder ({} when absent)."""
    f = Path(path) / METRICS_FILE
    return json.loads(f.read_text()) if f.is_file() else {}


def read_model_entry(path: str | os.PathLike[str], key: str) -> Any:
    """The top-level entry ``key`` of a model folder's ``config.json`` (``None`` when absent).

    Raises:
        LatentsteerError: no ``config.json``, or one that is not a JSON object.
    """
    cfg_path = Path(path) / CONFIG_FILE
    if not cfg_path.is_file():
        raise LatentsteerError(f"{Path(path)} is not a model folder (no {CONFIG_FILE})")
    try:
        meta = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LatentsteerError(f"{cfg_path} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise LatentsteerError(f"{cfg_path} is not a JSON object")
    return meta.get(key)
