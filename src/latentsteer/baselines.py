"""Baselines steering does not use its latent space for.

* :func:`data_space_ascent` — gradient ascent on the pixels, through encoder and heads,
  clipped to [0, 1]. It is the counter-example latent steering exists to beat: the heads'
  predictions rise while the image turns into an adversarial pattern no person (and no
  independent oracle) would read that way.
"""

from __future__ import annotations

import time
from typing import Literal

import torch

from latentsteer.ascent import PathRecord, SteerResult
from latentsteer.model import MultiHeadVAE
from latentsteer.objectives import Goal, combine
from latentsteer.readout import readout as make_readout


def data_space_ascent(
    model: MultiHeadVAE,
    images: torch.Tensor,
    goals: list[Goal],
    *,
    steps: int = 200,
    lr: float = 0.01,
    penalty_weight: float = 10.0,
    readout: Literal["code", "cycle", "mixed"] = "code",
) -> SteerResult:
    """Maximise the goals' combined objective over pixels, scoring ``predict(encode(x))``.

    Args:
        model: trained model.
        images: ``(n, *sample_shape)`` start samples (MNIST: images in [0, 1]).
        goals: the same declared goals latent steering takes (bound at the encoded start).
        steps: Adam steps on the pixels.
        lr: pixel step size.
        penalty_weight: weight of violated-constraint penalties.
        readout: how the heads read the encoded image's code (as in :func:`steer`).

    Returns:
        A :class:`SteerResult` whose ``images`` are the pixel path and ``z`` its encoding.
    """
    if steps < 1 or not lr > 0:
        raise ValueError("steps must be a positive integer and lr positive")
    model.eval()
    x0 = model.as_samples(images)
    with torch.no_grad():
        z0 = model.posterior(x0)[0]
    read = make_readout(model, readout)
    bound = [g.bind(model, z0, read) for g in goals]
    objective = combine(bound, penalty=penalty_weight)
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    path, record = [], PathRecord(bound)
    start = time.perf_counter()
    for t in range(steps + 1):
        mu = model.posterior(x)[0]  # (n, d)
        pred = read(mu)
        obj = objective(pred)  # (n,)
        path.append(x.detach().cpu().clone())
        record.add(mu, pred, obj)
        if t == steps:
            break
        (grad,) = torch.autograd.grad(-obj.sum(), x)
        x.grad = grad
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    n = len(x0)
    return SteerResult(
        **record.stacked(),  # type: ignore[arg-type]
        manifold={},
        stop_reason=["steps"] * n,
        stop_step=torch.full((n,), steps, dtype=torch.long),
        wall_seconds=time.perf_counter() - start,
        model=model,
        _images=torch.stack(path),
    )
