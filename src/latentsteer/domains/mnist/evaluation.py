"""Test-set evaluation of a trained MultiHeadVAE, with the judge and morphometry as oracles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from latentsteer.domains.mnist.judge import Judge
from latentsteer.domains.mnist.morphometry import MorphometryConfig, measure
from latentsteer.model import MultiHeadVAE, bernoulli_nll, gaussian_kl
from latentsteer.train import head_metrics


@dataclass
class Evaluation:
    """Metrics plus the arrays the figures are drawn from.

    Attributes:
        metrics: flat name → number (the contents of ``reports/evaluate.json``).
        originals, reconstructions: ``(n, 28, 28)`` test images and their decoded means.
        predictions: head name → ``(n,)`` predicted class or value at the posterior mean.
        recon_thickness: ``(n,)`` measured thickness of the reconstructions.
        judge_on_recon: ``(n,)`` the judge's digit for each reconstruction.
    """

    metrics: dict[str, float]
    originals: torch.Tensor
    reconstructions: torch.Tensor
    predictions: dict[str, np.ndarray]
    recon_thickness: np.ndarray
    judge_on_recon: np.ndarray


@torch.no_grad()
def evaluate(
    model: MultiHeadVAE,
    judge: Judge,
    images: torch.Tensor,
    labels: pd.DataFrame,
    seed: int = 0,
    batch_size: int = 1000,
    measure_config: MorphometryConfig | None = None,
) -> Evaluation:
    """Evaluate on a labelled split.

    −ELBO is a one-sample Monte Carlo estimate per image (seeded), in nats, under the
    model's likelihood: independent Bernoulli pixels with the grey level in [0, 1] as the
    target. That is the training objective; for non-binary pixels it is not a normalised
    density, so compare it only between runs of this project.

    Args:
        model, judge: trained networks (eval mode).
        images: ``(n, 28, 28)`` in [0, 1].
        labels: the split's label table (``digit`` and each head's column), row-aligned.
        seed: seeds the ELBO's posterior samples.
        measure_config: how to measure the reconstructions; pass the definition ``labels``
            was measured with, or the thickness comparison mixes two definitions
            (``None``: the defaults).
    """
    model.eval()
    device = model.device
    g = torch.Generator(device="cpu").manual_seed(seed)
    mus, recons, nll, kl = [], [], [], []
    for x in images.split(batch_size):
        x = x.to(device)
        mu, logvar = model.posterior(x)
        eps = torch.randn(mu.shape, generator=g).to(device)
        z = mu + eps * (0.5 * logvar).exp()
        nll.append(bernoulli_nll(model.decode_logits(z), x).cpu())
        kl.append(gaussian_kl(mu, logvar).cpu())
        mus.append(mu)
        recons.append(torch.sigmoid(model.decode_logits(mu)).cpu())
    mu = torch.cat(mus)
    recon = torch.cat(recons)
    nll_t, kl_t = torch.cat(nll), torch.cat(kl)
    metrics: dict[str, float] = {
        "neg_elbo_nats": float((nll_t + kl_t).mean()),
        "recon_nll_nats": float(nll_t.mean()),
        "kl_nats": float(kl_t.mean()),
        "n_images": float(len(images)),
    }
    predicted = model.predict(mu)
    truth = {
        h.name: torch.as_tensor(labels[h.column].to_numpy(dtype=float)) for h in model.config.heads
    }
    metrics.update(head_metrics(model, predicted, truth))
    preds = {
        h.name: predicted[h.name].cpu().numpy().argmax(1)
        if h.kind == "class"
        else predicted[h.name].cpu().numpy()
        for h in model.config.heads
    }
    digits = labels["digit"].to_numpy()
    judge_recon = judge.probabilities(recon).argmax(1).cpu().numpy()
    metrics["judge_accuracy_on_originals"] = float(
        np.mean(judge.probabilities(images).argmax(1).cpu().numpy() == digits)
    )
    metrics["judge_accuracy_on_reconstructions"] = float(np.mean(judge_recon == digits))
    table = measure(recon.numpy(), config=measure_config, progress=False)
    recon_thick = table.thickness.to_numpy()
    orig_thick = labels["thickness"].to_numpy()
    ok = np.isfinite(recon_thick) & np.isfinite(orig_thick)
    metrics["recon_thickness_pearson_r"] = float(np.corrcoef(recon_thick[ok], orig_thick[ok])[0, 1])
    metrics["recon_thickness_mae"] = float(np.mean(np.abs(recon_thick[ok] - orig_thick[ok])))
    return Evaluation(metrics, images, recon, preds, recon_thick, judge_recon)


@torch.no_grad()
def latent_traversal(
    model: MultiHeadVAE, start: torch.Tensor, dims: list[int], span: float = 2.5, steps: int = 9
) -> torch.Tensor:
    """Decode ``start`` with one latent dimension swept from −span to +span at a time.

    Args:
        start: ``(d,)`` a code to traverse around.
        dims: latent dimensions to sweep, one row each.

    Returns:
        ``(len(dims), steps, 28, 28)`` images.
    """
    values = torch.linspace(-span, span, steps)
    rows = []
    for d in dims:
        z = start.repeat(steps, 1).to(model.device)
        z[:, d] = values.to(model.device)
        rows.append(model.decode(z).cpu())
    return torch.stack(rows)
