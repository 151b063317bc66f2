"""The training molecules nearest each start, as candidates the heads rank beside the ascent's.

Latent ascent proposes from one code per start and walks a few dozen steps; a training
molecule a few substitutions away may already be what was asked, and the model has seen
it. So the ascent's first round also offers, for each start, the ``k`` training molecules
most similar to it (Tanimoto ≥ δ, the start itself excluded). The heads read them like any
other candidate (at the encoder's code of their tokens) and the same ranking decides which
RDKit measures, within the same budget; a later round may then ascend from one of them.
The training labels are never read here: RDKit measures the molecules the heads pick,
and each is charged to the budget, so the comparison with the ``dataset`` baseline (which
reads every label for free) stays fair.

Measured on the default experiments in ``docs/decisions/0003-nearest-training-candidates.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from latentsteer.domains.molecules.proposals import Proposals, read_rows
from latentsteer.domains.molecules.similarity import tanimoto
from latentsteer.model import MultiHeadVAE


def nearest_training(
    model: MultiHeadVAE,
    starts: list[str],
    start_fps: list[object | None],
    dataset: pd.DataFrame,
    dataset_fps: list[object | None],
    k: int,
    threshold: float,
) -> tuple[list[list[str]], list[torch.Tensor], list[pd.DataFrame], list[np.ndarray]]:
    """Per start, its ``k`` most similar training molecules at similarity ≥ ``threshold``.

    Args:
        starts: canonical SMILES of the starts.
        start_fps: their fingerprints.
        dataset: training molecules: ``canonical`` and ``selfies`` columns.
        dataset_fps: fingerprints of ``dataset.canonical``.

    Returns:
        Per start: the molecules (canonical SMILES, most similar first), ``(m, L)`` their
        token rows, the heads' reading of each (one column per regression head), and
        ``(m,)`` their similarities to the start. Molecules the vocabulary cannot write are
        skipped.
    """
    vocab = model.domain.vocabulary  # type: ignore[attr-defined]
    names = dataset.canonical.to_numpy()
    picks: list[np.ndarray] = []
    sims_of: list[np.ndarray] = []
    for start, fp in zip(starts, start_fps, strict=True):
        sims = tanimoto(fp, dataset_fps)
        near = np.flatnonzero((sims >= threshold) & (names != start))
        near = near[np.argsort(-sims[near], kind="stable")[:k]]
        picks.append(near)
        sims_of.append(sims[near])
    every = np.unique(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)
    fits = vocab.fits(dataset.selfies.to_numpy()[every].tolist()) if len(every) else []
    writable = every[np.asarray(fits, dtype=bool)] if len(every) else every
    if len(writable):
        rows = torch.as_tensor(vocab.encode(dataset.selfies.to_numpy()[writable].tolist()),
                               dtype=torch.float32)  # fmt: skip
    else:  # no training molecule near any start
        rows = torch.zeros((0, vocab.length))
    read = read_rows(model, rows.to(model.device))
    where = {int(j): r for r, j in enumerate(writable)}
    smiles, tokens, predicted, similarity = [], [], [], []
    for near, sims in zip(picks, sims_of, strict=True):
        keep = [(int(j), s) for j, s in zip(near, sims, strict=True) if int(j) in where]
        at = [where[j] for j, _ in keep]
        smiles.append([str(names[j]) for j, _ in keep])
        tokens.append(rows[at])
        predicted.append(read.iloc[at].reset_index(drop=True))
        similarity.append(np.array([s for _, s in keep], dtype=float))
    return smiles, tokens, predicted, similarity


def with_neighbours(
    proposals: Proposals,
    near: tuple[list[list[str]], list[torch.Tensor], list[pd.DataFrame], list[np.ndarray]],
) -> Proposals:
    """``proposals`` with each start's neighbours (:func:`nearest_training`) added to its
    candidates (a molecule already proposed is not repeated)."""
    smiles, rows, predicted, similarity = [], [], [], []
    for i, (n_smiles, n_rows, n_pred, n_sims) in enumerate(zip(*near, strict=True)):
        have = set(proposals.smiles[i])
        new = [k for k, s in enumerate(n_smiles) if s not in have]
        smiles.append(proposals.smiles[i] + [n_smiles[k] for k in new])
        rows.append(torch.cat([proposals.rows[i], n_rows[new].to(proposals.rows[i])]))
        predicted.append(pd.concat([proposals.predicted[i], n_pred.iloc[new]],
                                   ignore_index=True))  # fmt: skip
        similarity.append(np.concatenate([proposals.similarity[i], n_sims[new]]))
    return Proposals(smiles, rows, predicted, similarity, proposals.start_predicted,
                     proposals.codes, proposals.reconstructed, proposals.model_calls,
                     proposals.wall_seconds)  # fmt: skip
