"""Load what every steering experiment reads: model, judges, realism reference, kNN codes.

Two of these cost seconds to compute: the certifier's features of the realism reference and the
codes of the kNN safeguard's training digits. The `context` stage computes them once into
``models/steering_context.npz`` (:func:`write_context_file`), and every optimize stage
reads that file instead of recomputing them (:func:`load_context` with ``cached``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from latentsteer.atomic import atomic_file
from latentsteer.context import Context
from latentsteer.devices import resolve_device
from latentsteer.domain import Domain, Oracle
from latentsteer.domains.mnist.calibrate import measure_config_of
from latentsteer.domains.mnist.datasets import load_split
from latentsteer.domains.mnist.judge import load_judge
from latentsteer.domains.mnist.labelled import read_labels
from latentsteer.domains.mnist.morphometry import MorphometryConfig
from latentsteer.domains.mnist.oracle import DigitOracle
from latentsteer.errors import LatentsteerError
from latentsteer.learned.attach import WithLearned, load_properties
from latentsteer.loading import load_model
from latentsteer.model import MultiHeadVAE
from latentsteer.optimize_config import OptimizeConfig

FORMAT = "latentsteer.steering_context/1"
FIX = "re-run `dvc repro context`"


def load_context(
    model_dir: str | Path,
    judge_dir: str | Path,
    data_root: str | Path,
    labels_root: str | Path,
    cfg: OptimizeConfig,
    cached: str | Path | None = None,
    measure_config: MorphometryConfig | None = None,
    certifier_dir: str | Path | None = None,
) -> Context:
    """Model and judge on ``cfg.device``, the last ``cfg.reference`` test digits (with labels
    and measured thickness) as the realism reference, kept apart from ``test:A-B`` starts,
    which count from 0, and the codes of the first ``cfg.knn_codes`` training digits.

    Args:
        cached: a file from :func:`write_context_file` holding the reference features and
            the kNN codes; without it they are computed here.
        measure_config: how the oracles measure. ``None`` takes the definition recorded in
            ``model_dir`` by the calibrate stage (the one its heads were fitted to), or
            :class:`MorphometryConfig`'s defaults for a folder that records none.
        certifier_dir: the certifier's folder: a second judge the steering loop never
            sees, which grades class goals and gives the realism features. ``None`` grades
            with ``judge_dir``'s judge (metrics then say
            ``certified_by: measures (tensors), judge``).

    Raises:
        LatentsteerError: ``cached`` is missing, damaged, foreign, or made for other
            settings or another model; ``model_dir`` records a bad measure definition.
    """
    device = resolve_device(cfg.device)
    model = load_model(model_dir, device)
    # Steering decodes every moving code at every step; the decoder's transposed convs run
    # about 1.6× faster channels-last on the CPU, with the same outputs. (The encoder's
    # convs do not gain, so they keep their layout.)
    model.decoder.to(memory_format=torch.channels_last)
    if measure_config is None:
        measure_config = measure_config_of(model_dir)
    judge = load_judge(judge_dir, device)
    certifier = None if certifier_dir is None else load_judge(certifier_dir, device)
    grader = certifier if certifier is not None else judge  # its features score realism
    test, test_labels = load_split(data_root, "test")
    reference = torch.as_tensor(test[-cfg.reference :], dtype=torch.float32) / 255.0
    thickness = read_labels(labels_root, "test").thickness.iloc[-cfg.reference :]
    if cached is None:
        codes, features = _train_codes(model, data_root, cfg.knn_codes, device), None
    else:
        stored = read_context_file(cached, cfg, model.latent_dim, grader.classify.in_features)
        codes = torch.as_tensor(stored["train_codes"]).to(device)
        features = stored["reference_features"]
    # The certifier measures with the code the labels came from (see domains/mnist/oracle.py).
    graded: Oracle | None = (
        None if certifier is None
        else DigitOracle(certifier, measure_config, "certifier", "scikit-image")
    )  # fmt: skip
    in_loop: Oracle = DigitOracle(judge, measure_config, "judge")
    # Properties fitted from the user's tables: the loop reads their guides, the certifier
    # their certifiers (learned/card.py), each only inside its applicability domain.
    learned = load_properties(model, model_dir)
    if learned:
        in_loop = WithLearned(in_loop, learned, "guide")
        graded = None if graded is None else WithLearned(graded, learned, "certifier")
    return Context(
        model, in_loop, reference,
        np.asarray(test_labels[-cfg.reference :]), thickness.to_numpy(), codes, data_root,
        cfg.workers, features, certifier=graded,
        reference_data=f"MNIST test split and training codes from {data_root}, labels "
        f"from {labels_root}",
        learned={n: o.card for n, o in learned.items()},
    )  # fmt: skip


def load_domain_context(
    domain: Domain,
    model_dir: str | Path,
    settings: OptimizeConfig,
    sources: Mapping[str, str | Path | None],
    cached: str | Path | None = None,
) -> Context:
    """:meth:`Domain.load_context` of MNIST: ``sources`` overrides the pipeline's folders
    (``judge``, ``certifier``, ``data``, ``labels``); a ``certifier`` of ``None`` grades
    with the guide judge, and the metrics say so.

    Raises:
        LatentsteerError: a needed source set to ``None``, or a missing or damaged one.
    """
    given = {**domain.sources, **sources}
    for key in ("judge", "data", "labels"):
        if given[key] is None:
            raise LatentsteerError(f"the MNIST domain needs a {key} folder; got none")
    judge, data, labels = given["judge"], given["data"], given["labels"]
    assert judge is not None and data is not None and labels is not None  # checked above
    return load_context(
        model_dir, judge, data, labels, settings, cached=cached, certifier_dir=given["certifier"]
    )


def _train_codes(
    model: MultiHeadVAE, data_root: str | Path, k: int, device: torch.device
) -> torch.Tensor:
    """``(k, d)`` posterior means of the first ``k`` training digits."""
    train, _ = load_split(data_root, "train")
    train_x = torch.as_tensor(train[:k], dtype=torch.float32) / 255.0
    with torch.no_grad():
        return model.encode(train_x.to(device))


def write_context_file(ctx: Context, path: str | Path) -> None:
    """Store ``ctx``'s reference features and kNN codes (atomically) for :func:`load_context`."""
    assert ctx.reference_features is not None  # set by Context.__post_init__
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            format=np.array(FORMAT),
            reference_features=ctx.reference_features.astype(np.float32),
            train_codes=ctx.train_codes.cpu().numpy().astype(np.float32),
        )


def read_context_file(
    path: str | Path, cfg: OptimizeConfig, latent_dim: int, feature_dim: int
) -> dict:
    """The arrays of a context file, checked against the settings and the models.

    Args:
        latent_dim: the VAE's code size ``d``.
        feature_dim: the width ``f`` of the grading judge's features (``Judge.embed``).

    Returns:
        ``{"reference_features": (cfg.reference, f), "train_codes": (cfg.knn_codes, d)}``.
    """
    file = Path(path)
    if not file.is_file():
        raise LatentsteerError(f"{file} is missing; {FIX}")
    try:
        with np.load(file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        # numpy's own messages speak of pickles and keywords, which mislead here.
        raise LatentsteerError(f"{file} is damaged or not an .npz file; {FIX}") from None
    if str(arrays.get("format", "")) != FORMAT:
        raise LatentsteerError(f"{file} is not a steering context ({FORMAT}); {FIX}")
    expected = {
        "reference_features": (cfg.reference, feature_dim),
        "train_codes": (cfg.knn_codes, latent_dim),
    }
    for key, shape in expected.items():
        got = arrays.get(key)
        if got is None or got.shape != shape:
            found = "missing" if got is None else f"shape {got.shape}"
            raise LatentsteerError(
                f"{file}: {key} is {found}, expected {shape} for optimize.reference "
                f"{cfg.reference}, optimize.knn_codes {cfg.knn_codes} and a {latent_dim}-d "
                f"model; {FIX}"
            )
        if not np.isfinite(got).all():
            raise LatentsteerError(f"{file}: {key} holds NaN or infinite values; {FIX}")
    return {k: arrays[k] for k in expected}
