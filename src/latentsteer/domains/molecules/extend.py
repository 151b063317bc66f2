"""A molecule model extended to a larger vocabulary and a longer row, function-preserving.

:func:`extend` builds a model of the larger vocabulary (old tokens at their old indices, new
ones appended) and row length, and copies the weights so that every molecule the old model
read encodes and decodes as before. The decoder copy is exact: a new token at an old
position sits :data:`MARGIN` below the padding token's logit, and at a new position padding
sits that far above every other token. The encoder's copy is not quite, because its
convolutions see padding tokens where the old row ended in zero padding, which changes the
last few convolution outputs; a ridge fit of the dense layer's weights on those outputs
over training molecules brings the codes back (the change left is measured and reported by
:func:`~.adapt.adapt_model`).
"""

from __future__ import annotations

import torch
from torch import nn

from latentsteer.domains.molecules.networks import ConvEncoder, MLPDecoder
from latentsteer.domains.molecules.vocabulary import Vocabulary
from latentsteer.model import MultiHeadVAE


def _vocabulary(model: MultiHeadVAE) -> Vocabulary:
    vocabulary = getattr(model.domain, "vocabulary", None)
    if not isinstance(vocabulary, Vocabulary):
        raise ValueError(f"a {model.domain.name} model has no SELFIES vocabulary to adapt")
    return vocabulary


#: Logit margin of the decoder's new outputs: a new token at an old position sits this far
#: below the padding token's logit (so never above the most likely token), and at a new
#: position padding sits this far above every other token.
MARGIN = 12.0
RIDGE = 1e-3  # ridge of the encoder's dense-layer refit, relative to its features' variance


# ---------------------------------------------------------------------- extending a model
def _check_architecture(model: MultiHeadVAE) -> None:
    if not isinstance(model.encoder, ConvEncoder) or not isinstance(model.decoder, MLPDecoder):
        raise ValueError(
            f"only the default molecule model (ConvEncoder and MLPDecoder) can be adapted; "
            f"this one has {type(model.encoder).__name__} and {type(model.decoder).__name__}"
        )


def _unchanged_positions(encoder: ConvEncoder, length: int) -> int:
    """How many of the last convolution's output positions see only the first ``length``
    input positions and no right-hand zero padding at any layer: those keep their values
    when a row of ``length`` is padded further with padding tokens."""
    convs = [m for m in encoder.convs if isinstance(m, nn.Conv1d)]
    sizes = [length]  # each layer's input length
    for c in convs:
        sizes.append((sizes[-1] + 2 * c.padding[0] - c.kernel_size[0]) // c.stride[0] + 1)
    count = 0
    for r in range(sizes[-1]):
        hi, ok = r, True
        for c, n_in in zip(reversed(convs), reversed(sizes[:-1]), strict=True):
            hi = hi * c.stride[0] - c.padding[0] + c.kernel_size[0] - 1  # last input read
            ok &= hi <= n_in - 1
        if not ok:
            break
        count += 1
    return count


def _conv_features(encoder: ConvEncoder, x: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` token rows → ``(B, C, R)`` the last convolution's outputs."""
    with torch.no_grad():
        return encoder.convs(encoder.embed(x.long()).transpose(1, 2))


def extend(
    model: MultiHeadVAE,
    vocabulary: Vocabulary,
    reference: torch.Tensor | None = None,
    seed: int = 0,
) -> MultiHeadVAE:
    """A model of a larger ``vocabulary`` that reads and writes the old model's molecules as
    it did.

    * Encoder: embeddings of old tokens copied, new ones small random draws; convolutions
      copied; the dense layer after the flatten (order: channels, then positions) keeps its
      weights on the positions whose convolution outputs do not change, and is refitted
      (ridge, towards the old weights and zero on new positions) on the rest so the codes of
      the ``reference`` rows come out as before. Without ``reference`` only an all-padding
      row is fitted, which is exact for the molecules that end before the changed positions'
      receptive field (under 37 tokens for a row of 50) and approximate above.
    * Decoder: the last layer's ``(L, V)`` block copied; a new token at an old position
      copies the padding token's weights with its logit ``MARGIN`` lower (so it never wins,
      and its probability is below ``e^-12``); at a new position padding is ``MARGIN`` above
      every other token whatever the code. Argmax decodes of old codes are exactly as before.
    * Heads, target scaling and the rest: copied.

    Args:
        model: a molecule model with the default networks (ConvEncoder, MLPDecoder).
        vocabulary: the old tokens first, in their order, then new ones; a length at least
            the old one.
        reference: ``(n, L_old)`` token rows of molecules the old model reads (e.g. its
            training molecules) to refit the encoder's dense layer on; a few thousand suffice.
        seed: seeds the new tokens' embeddings.

    Returns:
        The new model, in eval mode, on the old one's device.

    Raises:
        ValueError: another architecture, or a vocabulary that drops, reorders or shortens
            the old one (one line).
    """
    from latentsteer.loading import build_model

    _check_architecture(model)
    old = _vocabulary(model)
    if vocabulary.tokens[: old.size] != old.tokens:
        raise ValueError("the new vocabulary must start with the old tokens, in their order")
    if vocabulary.length < old.length:
        raise ValueError(f"the new length {vocabulary.length} is shorter than the model's "
                         f"{old.length}")  # fmt: skip
    entries = {**model.domain.config_entries(), "vocabulary": vocabulary.to_json()}
    new = build_model(model.config, entries).to(model.device)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    v0, v1, l0, l1 = old.size, vocabulary.size, old.length, vocabulary.length
    g = torch.Generator().manual_seed(seed)

    # Encoder embeddings: new rows at the scale of the old ones' spread, small.
    embed = state["encoder.embed.weight"]  # (V0, E)
    fresh = torch.randn(v1 - v0, embed.shape[1], generator=g, dtype=embed.dtype) * 0.1
    state["encoder.embed.weight"] = torch.cat([embed, fresh.to(embed.device) * embed.std()])

    # Decoder's last layer: hidden → L·V, viewed (L, V, hidden) and (L, V).
    last = len(model.decoder.net) - 1
    w_key, b_key = f"decoder.net.{last}.weight", f"decoder.net.{last}.bias"
    w0 = state[w_key].view(l0, v0, -1)
    b0 = state[b_key].view(l0, v0)
    w1 = w0.new_zeros(l1, v1, w0.shape[2])
    b1 = b0.new_full((l1, v1), -MARGIN)
    w1[:l0, :v0], b1[:l0, :v0] = w0, b0
    w1[:l0, v0:] = w0[:, :1]  # new tokens: the padding token's weights ...
    b1[:l0, v0:] = b0[:, :1] - MARGIN  # ... and a logit MARGIN below it
    b1[l0:, 0] = MARGIN  # new positions: padding, whatever the code
    state[w_key], state[b_key] = w1.reshape(l1 * v1, -1), b1.reshape(-1)

    # Encoder's dense layer: (hidden, C·R) viewed (hidden, C, R).
    dense_w = "encoder.dense.1.weight"
    keep = _unchanged_positions(model.encoder, l0)
    r0 = model.encoder.dense[1].in_features // (channels := _conv_channels(model.encoder))
    r1 = new.encoder.dense[1].in_features // channels
    wd0 = state[dense_w].view(-1, channels, r0)
    wd1 = wd0.new_zeros(wd0.shape[0], channels, r1)
    wd1[:, :, :r0] = wd0
    state[dense_w] = wd1.reshape(wd0.shape[0], -1)
    new.load_state_dict(state)
    _refit_dense(model, new, keep, reference)
    return new.eval()


def _conv_channels(encoder: ConvEncoder) -> int:
    return [m for m in encoder.convs if isinstance(m, nn.Conv1d)][-1].out_channels


@torch.no_grad()
def _refit_dense(
    old: MultiHeadVAE, new: MultiHeadVAE, keep: int, reference: torch.Tensor | None
) -> None:
    """Refit ``new``'s encoder dense-layer weights on positions ``keep:`` (and its bias) so
    its pre-activations on ``reference`` rows (plus an all-padding row) match ``old``'s.

    The old pre-activation is ``W0 f0 + b0``; the new one ``W f + b``, with ``f0 = f`` on
    positions before ``keep``. So the part to match is ``W0[keep:] f0[keep:]``, from the new
    features ``f[keep:]`` and a bias: a ridge regression (float64) whose solution is pulled
    towards the copied weights, so with little data it stays near them.
    """
    l0 = _vocabulary(old).length
    rows = torch.zeros(1, l0, device=old.device)  # the all-padding row: exact for short rows
    if reference is not None and len(reference):
        rows = torch.cat([rows, reference.to(old.device).float()])
    wide = torch.zeros(len(rows), _vocabulary(new).length, device=old.device)
    wide[:, :l0] = rows
    f0 = _conv_features(old.encoder, rows)[:, :, keep:].flatten(1).double()  # (n, C·(R0-k))
    f1 = _conv_features(new.encoder, wide)[:, :, keep:].flatten(1).double()  # (n, C·(R1-k))
    layer = new.encoder.dense[1]
    channels = _conv_channels(new.encoder)
    r0 = old.encoder.dense[1].in_features // channels
    r1 = layer.in_features // channels
    w_old = old.encoder.dense[1].weight.view(-1, channels, r0)[:, :, keep:].flatten(1).double()
    w_start = layer.weight.view(-1, channels, r1)[:, :, keep:].flatten(1).double()
    target = f0 @ w_old.T - f1 @ w_start.T  # (n, hidden): what the refit must add
    x = torch.cat([f1, torch.ones(len(f1), 1, dtype=f1.dtype, device=f1.device)], dim=1)
    scale = x.pow(2).mean(0).clamp_min(1e-12)  # per-feature ridge, scale-free
    penalty = torch.diag(RIDGE * scale * max(len(x), 1))
    penalty[-1, -1] = 0.0  # the bias is free
    delta = torch.linalg.solve(x.T @ x + penalty, x.T @ target)  # (D+1, hidden)
    w = layer.weight.view(-1, channels, r1)
    w[:, :, keep:] += delta[:-1].T.reshape(-1, channels, r1 - keep).to(w.dtype)
    layer.bias += delta[-1].to(layer.bias.dtype)


# ---------------------------------------------------------------------- adapting
