"""Training-time augmentation shared by the judge and the VAE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random whole-pixel offset, filling with background.

    Whole pixels keep every stroke exactly as drawn, so Morpho-MNIST labels (thickness,
    slant, width, ...) stay true for the shifted image, as long as the ink stays inside the
    frame (MNIST digits have a 4-pixel margin).

    Args:
        x: ``(B, H, W)`` images.
        max_shift: largest offset in pixels along each axis; 0 returns ``x`` unchanged.
        g: CPU generator that draws the offsets.

    Returns:
        ``(B, H, W)`` shifted images.
    """
    if max_shift == 0:
        return x
    b, h, w = x.shape
    s = max_shift
    off = torch.randint(0, 2 * s + 1, (2, b), generator=g).to(x.device)  # (2, B) in [0, 2s]
    padded = F.pad(x, (s, s, s, s))  # (B, H+2s, W+2s)
    rows = off[0][:, None, None] + torch.arange(h, device=x.device)[None, :, None]  # (B, H, 1)
    cols = off[1][:, None, None] + torch.arange(w, device=x.device)[None, None, :]  # (B, 1, W)
    return padded[torch.arange(b, device=x.device)[:, None, None], rows, cols]
