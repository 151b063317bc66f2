"""Baselines steering does not use its latent space for.

* :func:`data_space_ascent` — gradient ascent on the pixels, through encoder and heads,
  clipped to [0, 1]. It is the counter-example latent steering exists to beat: the heads'
  predictions rise while the image turns into an adversarial pattern no person (and no
  independent oracle) would read that way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from latentsteer.model import MultiHeadVAE
from latentsteer.objectives import Goal, combine


@dataclass
class PixelResult:
    """Data-space ascent outcome.

    Attributes:
        images: ``(T+1, n, 28, 28)`` the pixel path in [0, 1].
        predicted: head name → ``(T+1, n)`` or ``(T+1, n, k)`` predictions at the encoded path.
        wall_seconds: time spent.
    """

    images: torch.Tensor
    predicted: dict[str, torch.Tensor]
    wall_seconds: float

    @property
    def final_images(self) -> torch.Tensor:
        return self.images[-1]


def data_space_ascent(
    model: MultiHeadVAE,
    images: torch.Tensor,
    goals: list[Goal],
    *,
    steps: int = 200,
    lr: float = 0.01,
    penalty_weight: float = 10.0,
) -> PixelResult:
    """Maximise the goals' combined objective over pixels, scoring ``predict(encode(x))``.

    Args:
        model: trained model.
        images: ``(n, 28, 28)`` start images in [0, 1].
        goals: the same declared goals latent steering takes (bound at the encoded start).
        steps: Adam steps on the pixels.
        lr: pixel step size.
        penalty_weight: weight of violated-constraint penalties.
    """
    if steps < 1 or not lr > 0:
        raise ValueError("steps must be a positive integer and lr positive")
    model.eval()
    x0 = model._as_images(images)
    with torch.no_grad():
        z0 = model.posterior(x0)[0]
    objective = combine([g.bind(model, z0) for g in goals], penalty=penalty_weight)
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    path, preds = [x0.detach().cpu()], []
    start = time.perf_counter()
    for t in range(steps + 1):
        pred = model.predict(model.posterior(x)[0])
        preds.append({k: v.detach().cpu() for k, v in pred.items()})
        if t == steps:
            break
        (grad,) = torch.autograd.grad(-objective(pred).sum(), x)
        x.grad = grad
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        path.append(x.detach().cpu().clone())
    return PixelResult(
        images=torch.stack(path),
        predicted={k: torch.stack([p[k] for p in preds]) for k in preds[0]},
        wall_seconds=time.perf_counter() - start,
    )
