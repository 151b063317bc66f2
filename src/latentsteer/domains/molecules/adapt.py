"""A molecule model adapted to a user's table: a longer row, new tokens, then a short fine-tune.

A model reads rows of a fixed length over a fixed SELFIES vocabulary (:mod:`.vocabulary`);
a user's series (e.g. a ChEMBL table) may hold longer molecules or atoms its training set
never had (iodine). :func:`table_codes` encodes the rows a model can take and names every
row it cannot (its ``where``: ``line 12: …``): nothing is dropped silently.
:func:`adapt_model` makes a model that can take them all:

1. :func:`extend` builds a model of the larger vocabulary (old tokens at their old
   indices, new ones appended) and row length, and copies the weights so that every
   molecule the old model read encodes and decodes as before. The decoder copy is exact;
   the encoder's is not quite, because its convolutions see padding tokens where the old
   row ended in zero padding, which changes the last few convolution outputs. A ridge fit of
   the dense layer's weights on those outputs over training molecules brings the codes back
   (the change left is measured and reported).
2. A few epochs fine-tune it on the table's molecules (repeated) together with a seeded
   sample of its training molecules: the VAE loss on all rows, the heads' loss on the rows
   with labels only (the table has no values of the model's own heads).

The report says what changed and what it cost: tokens added, lengths, molecules, seconds, and
exact reconstructions and head R² before and after. Everything is seeded; on CPU a rerun
gives the same model.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentsteer.domains.molecules.networks import ConvEncoder, MLPDecoder
from latentsteer.domains.molecules.vocabulary import Vocabulary
from latentsteer.learned.table import PropertyTable
from latentsteer.model import MultiHeadVAE, gaussian_kl

#: Fine-tune defaults, chosen by measurement on the MOSES model (rows of 50) and the
#: 1 017-molecule ChEMBL pIC50 series of RDKit's FreeWilson data (up to 72 tokens, [I] and
#: [C@@H1] new): 142 steps; the whole adaptation took 136 s of CPU time (2 threads, AMD
#: EPYC, 2026-12-07), 200 s of wall time on a machine shared with other jobs. It keeps the
#: heads (R² within 0.007) and most exact reconstructions of MOSES molecules (17.4% ->
#: 14.1%); the table's molecules come back token by token (66%) but seldom whole: that
#: takes many more epochs than a CPU minute affords (``epochs``).
EPOCHS = 2
TRAINING_MOLECULES = 6_000
REPEATS = 3  # each table molecule is seen this many times per epoch
# Adam, cosine-decayed to 5%: a tenth of training's rate. 5e-4 learnt the table's tokens a
# little better (73% against 66%) but cost a fifth of the exact reconstructions of MOSES
# molecules (17.4% -> 11.9%, against 14.1% at 2e-4) and twice the heads' R² (0.012, 0.006).
LR = 2e-4
BETA = 0.1  # the molecule model's KL weight (params.yaml molecules.train.beta)
BATCH = 128
HELD_OUT = 1000  # validation molecules whose reconstruction is compared before and after

#: Logit margin of the decoder's new outputs: a new token at an old position sits this far
#: below the padding token's logit (so never above the most likely token), and at a new
#: position padding sits this far above every other token.
MARGIN = 12.0
RIDGE = 1e-3  # ridge of the encoder's dense-layer refit, relative to its features' variance


# ---------------------------------------------------------------------- reading a table
def _table_tokens(table: PropertyTable) -> list[list[str] | str]:
    """Each row's SELFIES tokens, or why it has none (SELFIES cannot write it, or it is
    several molecules)."""
    import selfies as sf

    out: list[list[str] | str] = []
    for smiles in table.samples:  # type: ignore[attr-defined]
        if "." in smiles:
            out.append("several molecules (a '.' in its SMILES)")
            continue
        try:
            out.append(list(sf.split_selfies(sf.encoder(smiles))))
        except sf.EncoderError:
            out.append("SELFIES cannot write it")
    return out


def _fit_problem(parts: list[str], vocabulary: Vocabulary) -> str | None:
    """Why ``vocabulary`` cannot take a molecule's tokens, or ``None``."""
    unknown = sorted(set(parts) - set(vocabulary.tokens))
    if unknown:
        s = "s" if len(unknown) > 1 else ""
        return f"token{s} {', '.join(unknown)} not in the model's vocabulary"
    if len(parts) > vocabulary.length:
        return f"{len(parts)} tokens, longer than the model's {vocabulary.length}"
    if not parts:
        return "no tokens"
    return None


def _vocabulary(model: MultiHeadVAE) -> Vocabulary:
    vocabulary = getattr(model.domain, "vocabulary", None)
    if not isinstance(vocabulary, Vocabulary):
        raise ValueError(f"a {model.domain.name} model has no SELFIES vocabulary to adapt")
    return vocabulary


def table_codes(
    model: MultiHeadVAE, table: PropertyTable
) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """The posterior means of the table's molecules the model can encode.

    Args:
        model: a molecule model.
        table: canonical SMILES in ``table.samples``, row names in ``table.where``.

    Returns:
        ``codes (m, d)`` posterior means (on the model's device), ``kept (m,)`` int64 row
        indices into the table, and one line per row refused (``line 12: 61 tokens, longer
        than the model's 50``), in table order.
    """
    vocabulary = _vocabulary(model)
    kept, selfies, refused = [], [], []
    for i, parts in enumerate(_table_tokens(table)):
        problem = parts if isinstance(parts, str) else _fit_problem(parts, vocabulary)
        if problem is None:
            kept.append(i)
            selfies.append("".join(parts))
        else:
            refused.append(f"{table.where[i]}: {problem}")
    x = torch.as_tensor(vocabulary.encode(selfies), dtype=torch.float32)
    return model.encode(x), np.asarray(kept, dtype=np.int64), refused


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
def _labels_folder(
    model: MultiHeadVAE,
    model_dir: str | os.PathLike[str] | None,
    labels: str | os.PathLike[str] | None,
) -> Path:
    if labels is not None:
        folder = Path(labels)
    else:
        recorded = getattr(model.domain, "labels", None)
        if model_dir is None or recorded is None:
            raise ValueError("adapting the model needs its training molecules: give their "
                             "labels folder (labels=FOLDER)")  # fmt: skip
        folder = Path(model_dir) / recorded
    if not (folder / "train.parquet").is_file():
        raise ValueError(f"{folder}: not a folder of the training molecules' labels "
                         f"(no train.parquet)")  # fmt: skip
    return folder


@torch.no_grad()
def _measure(
    model: MultiHeadVAE, x: torch.Tensor, targets: dict[str, torch.Tensor] | None = None
) -> dict[str, object]:
    """What the model does with rows ``x (n, L)``, all at their posterior means ``mu``.

    Returns:
        ``mu (n, d)``; ``exact``: the share whose argmax decode is the same molecule
        (canonical SMILES); ``tokens``: the share of their tokens (padding left out) decoded
        right; ``r2``: head → R² against ``targets`` (NaN targets left out).
    """
    from latentsteer.train import head_metrics

    mu = model.encode(x)
    back = model.decode(mu)
    real = x != 0
    smiles_in = model.domain.to_smiles(x)  # type: ignore[attr-defined]
    smiles_out = model.domain.to_smiles(back)  # type: ignore[attr-defined]
    out: dict[str, object] = {
        "mu": mu,
        "exact": float(np.mean([a == b for a, b in zip(smiles_in, smiles_out, strict=True)])),
        "tokens": ((back == x) & real).sum().item() / max(real.sum().item(), 1),
    }
    if targets is not None:
        metrics = head_metrics(model, model.predict(mu), targets)
        out["r2"] = {h: metrics[f"{h}_r2"] for h in model.head_names}
    return out


def _labelled_rows(
    folder: Path, split: str, model: MultiHeadVAE, vocabulary: Vocabulary, n: int, seed: int
) -> tuple[list[str], dict[str, torch.Tensor]]:
    """The SELFIES of ``n`` seeded molecules of ``split`` with every head's label that
    ``vocabulary`` encodes (all of them if fewer), and their targets ``(n,)`` per head."""
    from latentsteer.domains.molecules.labelled import read_molecule_labels

    table = read_molecule_labels(folder, split)
    columns = [h.column for h in model.config.heads]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{folder}/{split}.parquet has no column {missing[0]!r} of a head")
    ok = table.valid.to_numpy(bool) & table.selfies.notna().to_numpy()
    ok &= table[columns].notna().all(axis=1).to_numpy()
    order = np.random.default_rng(seed).permutation(np.flatnonzero(ok))
    # Checking every row costs seconds on 80 000 molecules; a margin of draws is enough.
    chosen: list[int] = []
    for start in range(0, len(order), max(n, 1)):
        part = order[start : start + max(n, 1)]
        fits = vocabulary.fits(table.selfies.iloc[part])
        chosen.extend(part[fits][: n - len(chosen)].tolist())
        if len(chosen) >= n:
            break
    rows = table.iloc[np.sort(chosen)]
    targets = {h.name: torch.tensor(rows[h.column].to_numpy(), dtype=torch.float32)
               for h in model.config.heads}  # fmt: skip
    return list(rows.selfies), targets


def _fine_tune(
    model: MultiHeadVAE,
    x: torch.Tensor,
    targets: dict[str, torch.Tensor],
    epochs: int,
    lr: float,
    beta: float,
    seed: int,
) -> int:
    """Train ``model`` in place on rows ``x (n, L)``: the VAE loss on every row and each
    head's loss (as :func:`latentsteer.train.losses`) on the rows whose target is finite.

    Returns:
        The number of optimiser steps.
    """
    device = model.device
    x = x.to(device)
    targets = {k: v.to(device) for k, v in targets.items()}
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    total = epochs * math.ceil(len(x) / BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: 0.05 + 0.475 * (1 + math.cos(math.pi * min(s, total) / total))
    )
    model.train()
    steps = 0
    for epoch in range(epochs):
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        for idx in torch.randperm(len(x), generator=g).split(BATCH):
            idx = idx.to(device)
            batch = x[idx]
            mu, logvar = model.posterior(batch)
            eps = torch.randn(mu.shape, generator=g).to(device)  # own generator: seeded
            z = mu + eps * (0.5 * logvar).exp()
            loss = model.domain.reconstruction_nll(model.decode_logits(z), batch).mean()
            loss = loss + beta * gaussian_kl(mu, logvar).mean()
            at_z, at_mu = model.head_outputs(z), model.head_outputs(mu)
            for h in model.config.heads:
                t = targets[h.name][idx]
                ok = torch.isfinite(t)  # the table's rows have no values of these heads
                if ok.any():
                    goal = model.standardise(h.name, t[ok])
                    head = 0.5 * (F.mse_loss(at_z[h.name][ok], goal)
                                  + F.mse_loss(at_mu[h.name][ok], goal))  # fmt: skip
                    loss = loss + h.weight * head
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            steps += 1
    model.eval()
    return steps


def adapt_model(
    model: MultiHeadVAE,
    table: PropertyTable,
    model_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    epochs: int = EPOCHS,
    training_molecules: int = TRAINING_MOLECULES,
    repeats: int = REPEATS,
    labels: str | os.PathLike[str] | None = None,
    lr: float = LR,
    beta: float = BETA,
) -> tuple[MultiHeadVAE, dict[str, object]]:
    """The model, adapted so it can encode every table molecule SELFIES can write.

    If it already can, the model itself and ``{"adapted": False}``. Otherwise the vocabulary
    gains the table's new tokens (sorted, appended), the length becomes the longest table
    molecule's, :func:`extend` builds the larger model (refitted on training molecules) and
    it is fine-tuned for ``epochs`` on ``training_molecules`` seeded training molecules with
    their head labels plus the table's molecules ``repeats`` times (reconstruction and KL
    only). Rows SELFIES cannot write, or of several molecules, are left out here;
    :func:`table_codes` names them.

    Args:
        model: a molecule model with the default networks.
        table: the user's table (canonical SMILES).
        model_dir: the model's folder: its recorded labels folder is relative to it.
        seed: seeds the sample of training molecules, new weights, batches and noise.
        epochs: fine-tune passes.
        training_molecules: training molecules drawn (all if fewer).
        repeats: how often each table molecule is seen per epoch.
        labels: the training molecules' labels folder (``train.parquet``, ``val.parquet``);
            by default the one the model recorded, relative to ``model_dir``.
        lr: Adam's learning rate, cosine-decayed to 5% over the fine-tune.
        beta: KL weight.

    Returns:
        The adapted model (eval mode) and a JSON-ready report: ``tokens_added``,
        ``length_old``/``length_new``, ``table_molecules``, ``training_molecules``,
        ``repeats``, ``epochs``, ``steps``, ``extend_max_code_shift`` (max ``|Δmu|`` of the
        held-out molecules right after :func:`extend`), ``held_out`` (validation molecules
        measured), ``held_out_exact`` (``before``, ``after_extend``, ``after``: the share of
        them reconstructed exactly), ``table_exact_after`` and ``table_tokens_after`` (the
        share of table molecules, and of their tokens, reconstructed), ``heads_r2`` (head →
        ``before``/``after`` on the held-out molecules), ``seconds`` (wall) and
        ``cpu_seconds`` (process CPU time, all threads).

    Raises:
        ValueError: another architecture, no labels folder, or bad settings (one line).
    """
    for key, value in (("epochs", epochs), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer; got {value!r}")
    if (
        isinstance(training_molecules, bool)
        or not isinstance(training_molecules, int)
        or (training_molecules < 0)
    ):
        raise ValueError(f"training_molecules must be an integer >= 0; got {training_molecules!r}")
    old = _vocabulary(model)
    usable = [(i, p) for i, p in enumerate(_table_tokens(table)) if isinstance(p, list) and p]
    if all(_fit_problem(p, old) is None for _, p in usable):
        return model, {"adapted": False}
    _check_architecture(model)
    started, cpu = time.perf_counter(), time.process_time()
    seen = {t for _, p in usable for t in p}
    added = sorted(seen - set(old.tokens))
    longest = max(len(p) for _, p in usable)
    vocabulary = Vocabulary((*old.tokens, *added), max(old.length, longest))
    folder = _labels_folder(model, model_dir, labels)

    # Training molecules (a seeded sample) and held-out validation molecules, as rows of the
    # old vocabulary (to measure the old model) and of the new one.
    heads = model.config.heads
    train, train_t = _labelled_rows(folder, "train", model, old, training_molecules, seed)
    val, val_t = _labelled_rows(folder, "val", model, old, HELD_OUT, seed + 1)

    def rows(selfies: list[str], v: Vocabulary) -> torch.Tensor:
        return torch.as_tensor(v.encode(selfies), dtype=torch.float32)

    table_new = rows(["".join(p) for _, p in usable], vocabulary)
    model.eval()
    before = _measure(model, rows(val, old), val_t)
    # The refit of the encoder's dense layer has ~1 000 features per output: a few thousand
    # rows pin it down.
    new = extend(model, vocabulary, rows(train[:4096], old), seed=seed)
    val_new = rows(val, vocabulary)
    extended = _measure(new, val_new)
    shift = (extended["mu"] - before["mu"]).abs().max().item() if len(val) else 0.0  # type: ignore[operator]

    x = torch.cat([rows(train, vocabulary), table_new.repeat(repeats, 1)])
    nan = torch.full((len(table_new) * repeats,), float("nan"))
    targets = {h.name: torch.cat([train_t[h.name], nan]) for h in heads}
    steps = _fine_tune(new, x, targets, epochs, lr, beta, seed)
    after = _measure(new, val_new, val_t)
    on_table = _measure(new, table_new)

    report: dict[str, object] = {
        "adapted": True,
        "tokens_added": added,
        "length_old": old.length,
        "length_new": vocabulary.length,
        "table_molecules": len(usable),
        "training_molecules": len(train),
        "repeats": repeats,
        "epochs": epochs,
        "steps": steps,
        "extend_max_code_shift": shift,
        "held_out": len(val),
        "held_out_exact": {
            "before": before["exact"],
            "after_extend": extended["exact"],
            "after": after["exact"],
        },
        "table_exact_after": on_table["exact"],
        "table_tokens_after": on_table["tokens"],
        "heads_r2": {
            h: {"before": before["r2"][h], "after": after["r2"][h]}  # type: ignore[index]
            for h in model.head_names
        },
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["cpu_seconds"] = round(time.process_time() - cpu, 1)  # all threads: shared machines
    return new, report
