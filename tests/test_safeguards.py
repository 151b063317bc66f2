"""The kNN safeguard's distances: exact, with finite gradients at the training codes."""

from __future__ import annotations

import torch
from conftest import tiny_model

from latentsteer.safeguards import KNNDensity

MODEL = tiny_model()


def exact_knn(z: torch.Tensor, codes: torch.Tensor, k: int) -> torch.Tensor:
    """``(n,)`` the same score in float64 over all pairs, as the reference."""
    dist = (z.double()[:, None, :] - codes.double()[None]).pow(2).sum(dim=2).sqrt()  # (n, m)
    return dist.topk(k, dim=1, largest=False).values.mean(dim=1)


def test_distance_of_a_training_code_to_itself_is_exactly_zero():
    # Codes far from the origin: torch.cdist's matrix-product form gives a code's distance
    # to itself as about 1e-3 here, on any CPU.
    codes = torch.randn(50, 4, generator=torch.Generator().manual_seed(0)) * 3 + 5
    assert torch.cdist(codes[:10], codes).min(dim=1).values.max() > 1e-6  # the trap is real
    score = KNNDensity(codes, k=1).score(MODEL, codes[:10])
    assert torch.equal(score, torch.zeros(10))


def test_scores_match_float64_on_the_default_sizes():
    gen = torch.Generator().manual_seed(1)
    codes = torch.randn(10000, 16, generator=gen)
    z = torch.cat([codes[:128], torch.randn(128, 16, generator=gen)])  # (256, 16)
    score = KNNDensity(codes, k=10).score(MODEL, z)
    torch.testing.assert_close(score.double(), exact_knn(z, codes, 10), rtol=0, atol=1e-6)


def test_gradients_are_finite_at_training_codes_and_right_elsewhere():
    gen = torch.Generator().manual_seed(2)
    codes = torch.randn(200, 4, generator=gen) * 3
    knn = KNNDensity(codes, k=3)
    z = torch.cat([codes[:5], torch.randn(5, 4, generator=gen)]).requires_grad_(True)
    knn.score(MODEL, z).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    # Away from the codes the gradient is the float64 reference's.
    ref = z.detach()[5:].double().requires_grad_(True)
    exact_knn(ref, codes, 3).sum().backward()
    torch.testing.assert_close(z.grad[5:].double(), ref.grad, rtol=1e-5, atol=1e-6)
