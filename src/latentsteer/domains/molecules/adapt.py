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

from latentsteer.domains.molecules.extend import _check_architecture, _vocabulary, extend
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
