"""Encoders and decoders of SELFIES token sequences.

A molecule is a row of ``L`` token indices (padded with 0, :data:`~.vocabulary.PAD`), carried
as float32 like every domain's samples and turned into indices by the embedding. Every
decoder returns ``(B, L, V)`` logits over the ``V`` tokens at each position.

Candidates, compared at equal CPU time in ``benchmarks/bench_molecule_vae.py`` (the numbers
are in ``docs/benchmarks.md``):

* :class:`ConvEncoder` — 1-D convolutions over token embeddings, then dense layers. Cheap:
  every position is computed at once.
* :class:`GRUEncoder` — a bidirectional GRU; its final states summarise the sequence.
* :class:`GRUDecoder` — autoregressive: each token is predicted from the code and the tokens
  before it (teacher forcing in training, greedy decoding otherwise).
* :class:`MLPDecoder` — all positions at once from the code alone (no autoregression).
* :class:`ConvDecoder` — all positions at once too, but through transposed 1-D convolutions,
  so neighbouring positions are computed from shared features.
"""

from __future__ import annotations

import math

import torch
from torch import nn

EMBED = 64  # width of a token embedding


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """Float token rows ``(B, L)`` → int64 indices for an embedding."""
    return x.long()


class ConvEncoder(nn.Module):
    """``(B, L)`` tokens → ``(B, 2d)``: three 1-D convolutions (two halve the length), then
    two dense layers."""

    def __init__(self, vocab: int, length: int, channels: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, EMBED)
        c = channels
        self.convs = nn.Sequential(
            nn.Conv1d(EMBED, c, 5, padding=2), nn.SiLU(),
            nn.Conv1d(c, 2 * c, 5, stride=2, padding=2), nn.SiLU(),
            nn.Conv1d(2 * c, 2 * c, 5, stride=2, padding=2), nn.SiLU(),
        )  # fmt: skip
        reduced = math.ceil(math.ceil(length / 2) / 2)  # after two stride-2 convolutions
        self.dense = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * c * reduced, hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * latent),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed(_tokens(x)).transpose(1, 2)  # (B, EMBED, L) for Conv1d
        return self.dense(self.convs(e))


class GRUEncoder(nn.Module):
    """``(B, L)`` tokens → ``(B, 2d)``: a bidirectional GRU's two final states, then a dense
    layer."""

    def __init__(self, vocab: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, EMBED)
        self.gru = nn.GRU(EMBED, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, 2 * latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.embed(_tokens(x)))  # h: (2, B, hidden)
        return self.out(torch.cat([h[0], h[1]], dim=1))


class GRUDecoder(nn.Module):
    """Autoregressive decoder ``(B, d) → (B, L, V)`` logits.

    The code sets the GRU's first state and is also fed at every step next to the previous
    token, so late tokens see it undiluted. Index ``V`` is a start token of the decoder's own.
    """

    def __init__(self, vocab: int, length: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.vocab, self.length = vocab, length
        self.embed = nn.Embedding(vocab + 1, EMBED)
        self.init = nn.Linear(latent, hidden)
        self.gru = nn.GRU(EMBED + latent, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of every position: teacher-forced on ``target (B, L)`` when given, else
        of a greedy decoding (each step fed the previous step's most likely token)."""
        h = torch.tanh(self.init(z)).unsqueeze(0)  # (1, B, hidden)
        start = torch.full((len(z), 1), self.vocab, dtype=torch.long, device=z.device)
        if target is not None:
            previous = torch.cat([start, _tokens(target)[:, :-1]], dim=1)  # (B, L)
            inputs = torch.cat(
                [self.embed(previous), z.unsqueeze(1).expand(-1, self.length, -1)], 2
            )
            return self.out(self.gru(inputs, h)[0])
        token, steps = start, []
        for _ in range(self.length):
            y, h = self.gru(torch.cat([self.embed(token), z.unsqueeze(1)], dim=2), h)
            logits = self.out(y)  # (B, 1, V)
            steps.append(logits)
            token = logits.argmax(dim=2)
        return torch.cat(steps, dim=1)


class MLPDecoder(nn.Module):
    """Non-autoregressive decoder ``(B, d) → (B, L, V)``: every position from the code at
    once."""

    def __init__(self, vocab: int, length: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.vocab, self.length = vocab, length
        self.net = nn.Sequential(
            nn.Linear(latent, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, length * vocab),
        )  # fmt: skip

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(len(z), self.length, self.vocab)


class ConvDecoder(nn.Module):
    """Non-autoregressive decoder ``(B, d) → (B, L, V)``: dense layers to a sequence a
    quarter as long, two transposed convolutions that double it, and a convolution to the
    token logits."""

    def __init__(self, vocab: int, length: int, channels: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.length = length
        c = channels
        reduced = math.ceil(math.ceil(length / 2) / 2)
        self.net = nn.Sequential(
            nn.Linear(latent, hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * c * reduced), nn.SiLU(),
            nn.Unflatten(1, (2 * c, reduced)),
            nn.ConvTranspose1d(2 * c, 2 * c, 4, stride=2, padding=1), nn.SiLU(),  # 2 × reduced
            nn.ConvTranspose1d(2 * c, c, 4, stride=2, padding=1), nn.SiLU(),  # 4 × reduced
            nn.Conv1d(c, vocab, 5, padding=2),
        )  # fmt: skip

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z)[:, :, : self.length].transpose(1, 2)  # (B, L, V)
