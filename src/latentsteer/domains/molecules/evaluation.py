"""Test-set evaluation of a molecule model: reconstruction, heads, and prior samples.

* **Reconstruction**: a test molecule is reconstructed when the greedy decoding of its
  posterior mean is the same molecule (equal canonical SMILES).
* **Heads**: R² and MAE of each head at the posterior means of the test molecules, against
  RDKit's labels.
* **Prior samples**: seeded standard-normal codes decoded greedily, measured as generated
  molecules (:mod:`.generation`) against the test molecules, next to the same metrics of as
  many training molecules (the floor of FCD at these set sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from latentsteer.domains.molecules.generation import (
    GenerationMetrics,
    MosesFilters,
    generation_metrics,
)
from latentsteer.model import MultiHeadVAE
from latentsteer.train import Dataset, head_metrics


@dataclass
class MoleculeEvaluation:
    """What :func:`evaluate_molecules` measured.

    Attributes:
        metrics: flat name → value (``reconstruction``, ``<head>_r2``, ``prior_valid``, …;
            ``training_*``: the training molecules' own generation metrics).
        reconstructed: ``(n,)`` SMILES decoded from each test molecule's posterior mean.
        prior: SMILES of the decoded prior samples, in draw order.
    """

    metrics: dict[str, float]
    reconstructed: list[str]
    prior: list[str]


@torch.no_grad()
def decode_smiles(model: MultiHeadVAE, z: torch.Tensor, batch_size: int = 1000) -> list[str]:
    """Canonical SMILES of the greedy decodings of codes ``(n, d)``."""
    out: list[str] = []
    for part in z.split(batch_size):
        out += model.domain.to_smiles(model.decode(part))  # type: ignore[attr-defined]
    return out


def evaluate_molecules(
    model: MultiHeadVAE,
    test: Dataset,
    test_smiles: list[str],
    training_smiles: list[str],
    filters: MosesFilters,
    samples: int = 10_000,
    seed: int = 0,
) -> MoleculeEvaluation:
    """Evaluate ``model`` (see the module docstring).

    Args:
        test: test molecules ``(n, L)`` the vocabulary encodes, with head targets.
        test_smiles: their canonical SMILES, in the same order (the FCD reference too).
        training_smiles: canonical SMILES of the training set (novelty, and the floor row:
            its first ``samples`` molecules).
        samples: prior draws to measure.
    """
    from fcd_torch import FCD

    model.eval()
    mu = model.encode(test.images)
    reconstructed = decode_smiles(model, mu)
    exact = sum(r == s for r, s in zip(reconstructed, test_smiles, strict=True))
    metrics: dict[str, float] = {"reconstruction": exact / max(len(test_smiles), 1)}
    metrics["test_molecules"] = len(test_smiles)
    with torch.no_grad():
        metrics.update(head_metrics(model, model.predict(mu), test.targets))

    prior = decode_smiles(model, model.sample_prior(samples, seed=seed))
    fcd = FCD(device=str(model.device), n_jobs=1, batch_size=512)
    reference = fcd.precalc(test_smiles)
    training = set(training_smiles)
    measured: dict[str, GenerationMetrics] = {
        "prior": generation_metrics(prior, training, filters, reference, fcd),
        "training": generation_metrics(training_smiles[:samples], set(), filters, reference, fcd),
    }
    for name, result in measured.items():
        metrics.update({f"{name}_{k}": v for k, v in result.as_dict().items()})
    del metrics["training_novel"]  # against an empty set: meaningless
    return MoleculeEvaluation(metrics, reconstructed, prior)


def reconstruction_table(
    test_smiles: list[str], reconstructed: list[str], rows: int = 200
) -> pd.DataFrame:
    """The first ``rows`` test molecules next to their reconstructions (for the report)."""
    pairs = list(zip(test_smiles, reconstructed, strict=True))[:rows]
    table = pd.DataFrame(pairs, columns=["test", "reconstructed"])
    table["exact"] = table.test == table.reconstructed
    return table
