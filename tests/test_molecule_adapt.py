"""Adapting a molecule model to a user's table: extend (function-preserving), refuse, adapt."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from molecule_model import SMILES, trained_model

from latentsteer.domains.molecules.adapt import adapt_model, extend, table_codes
from latentsteer.domains.molecules.properties import measure_molecules
from latentsteer.domains.molecules.vocabulary import PAD, Vocabulary
from latentsteer.learned.table import PropertyTable

IODINE = "OCCI"  # [I]: a token the tiny model never saw
LONG = "CCCCCCCCCCCCCCCCO"  # 17 tokens, longer than the tiny model's rows


def _labels(folder: Path) -> Path:
    """The tiny model's training molecules as a labels folder (train and val alike)."""
    folder.mkdir()
    table = measure_molecules(SMILES, workers=1, progress=False)
    for split in ("train", "val"):
        table.to_parquet(folder / f"{split}.parquet")
    return folder


def _table(smiles: list[str]) -> PropertyTable:
    """A user's table as the molecule domain reads it: canonical SMILES, rows named."""
    from rdkit import Chem

    smiles = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles]
    where = [f"line {i + 2}" for i in range(len(smiles))]  # a header line first
    return PropertyTable("t.csv", "y", smiles, np.arange(len(smiles), dtype=float), where)


def _rows(model, smiles: list[str]) -> torch.Tensor:
    return model.domain.encode_smiles(smiles)


def test_extend_keeps_old_molecules() -> None:
    model = trained_model()
    old = model.domain.vocabulary
    bigger = Vocabulary((*old.tokens, "[I]", "[Se]"), old.length + 7)
    x = _rows(model, SMILES)  # (16, L0)
    new = extend(model, bigger, reference=x)
    assert new.domain.vocabulary.tokens[: old.size] == old.tokens  # old indices kept
    assert new.domain.vocabulary.length == old.length + 7

    # Decoder: exact by construction, for any code (prior draws far from the data too).
    z = torch.cat([model.encode(x), model.sample_prior(200, seed=1) * 2])
    assert torch.equal(new.decode(z)[:, : old.length], model.decode(z))
    assert (new.decode(z)[:, old.length :] == 0).all()  # new positions: padding
    logits = new.decode_logits(z)
    assert (logits.softmax(-1)[:, : old.length, old.size :] < 1e-5).all()  # new tokens: ~0

    # Encoder: the convolutions near the old row's end see padding tokens where they saw
    # zeros, and the dense layer is refitted on the reference rows to undo that. The tiny
    # model's rows are all that short, so the refit nearly interpolates its 16 reference
    # molecules; 1e-3 is ~1% of the codes' spread here (the MOSES model: max 0.02, docs in
    # adapt.py). Decodes of the codes are identical.
    wide = torch.zeros(len(x), bigger.length)
    wide[:, : old.length] = x
    mu_old, mu_new = model.encode(x), new.encode(wide)
    assert (mu_new - mu_old).abs().max() < 1e-3 * max(1.0, mu_old.std().item() * 10)
    assert torch.equal(new.decode(mu_new)[:, : old.length], model.decode(mu_old))

    # Without reference rows only an all-padding row is fitted: exact for it.
    plain = extend(model, bigger)
    empty_old, empty_new = torch.zeros(1, old.length), torch.zeros(1, bigger.length)
    assert torch.allclose(plain.encode(empty_new), model.encode(empty_old), atol=1e-5)


def test_extend_refuses_bad_vocabularies_and_other_networks() -> None:
    model = trained_model()
    old = model.domain.vocabulary
    with pytest.raises(ValueError, match="start with the old tokens"):
        extend(model, Vocabulary((PAD, "[I]", *old.tokens[1:]), old.length))
    with pytest.raises(ValueError, match="shorter"):
        extend(model, Vocabulary(old.tokens, old.length - 1))
    model.decoder = torch.nn.Identity()
    with pytest.raises(ValueError, match="only the default molecule model"):
        extend(model, Vocabulary((*old.tokens, "[I]"), old.length))


def test_table_codes_refuses_then_adapt_accepts(tmp_path: Path) -> None:
    model = trained_model()
    length = model.domain.vocabulary.length
    table = _table(["CCO", "c1ccccc1O", IODINE, LONG, "CCO.CCN", "CC(=O)N"])
    codes, kept, refused = table_codes(model, table)
    assert kept.tolist() == [0, 1, 5] and kept.dtype == np.int64
    assert codes.shape == (3, model.latent_dim)
    assert torch.allclose(codes, model.encode(_rows(model, ["CCO", "c1ccccc1O", "CC(=O)N"])))
    assert refused == [
        "line 4: token [I] not in the model's vocabulary",
        f"line 5: 17 tokens, longer than the model's {length}",
        "line 6: several molecules (a '.' in its SMILES)",
    ]

    labels = _labels(tmp_path / "labels")
    new, report = adapt_model(model, table, labels=labels, epochs=2, training_molecules=16)
    codes, kept, refused = table_codes(new, table)
    assert kept.tolist() == [0, 1, 2, 3, 5]
    assert refused == ["line 6: several molecules (a '.' in its SMILES)"]  # never adapted for
    assert torch.isfinite(codes).all()

    assert report["adapted"] is True
    assert report["tokens_added"] == ["[I]"]
    assert (report["length_old"], report["length_new"]) == (length, 17)
    assert new.domain.vocabulary.length == 17
    assert new.domain.vocabulary.tokens == (*model.domain.vocabulary.tokens, "[I]")
    assert report["table_molecules"] == 5 and report["training_molecules"] == 16
    assert report["held_out"] == len(SMILES)
    assert report["steps"] == 2 * math.ceil((16 + 3 * 5) / 128)
    # The refit's reference rows are the training molecules, here every held-out one too.
    assert 0.0 <= report["extend_max_code_shift"] < 1e-2
    exact = report["held_out_exact"]
    assert exact["before"] == exact["after_extend"]  # extend kept every decode
    for share in (*exact.values(), report["table_exact_after"], report["table_tokens_after"]):
        assert 0.0 <= share <= 1.0
    assert set(report["heads_r2"]) == set(model.head_names)
    for r2 in report["heads_r2"].values():
        assert set(r2) == {"before", "after"} and all(math.isfinite(v) for v in r2.values())
    assert report["seconds"] >= 0 and report["cpu_seconds"] >= 0

    again, report_again = adapt_model(model, table, labels=labels, epochs=2, training_molecules=16)
    for key, value in new.state_dict().items():  # seeded: the same model again
        assert torch.equal(value, again.state_dict()[key]), key
    assert {k: v for k, v in report_again.items() if "seconds" not in k} == {
        k: v for k, v in report.items() if "seconds" not in k
    }


def test_adapt_model_leaves_a_model_that_fits(tmp_path: Path) -> None:
    model = trained_model()
    same, report = adapt_model(model, _table(["CCO", "CCCN"]), labels=tmp_path / "none")
    assert same is model and report == {"adapted": False}


def test_adapt_model_needs_the_training_molecules(tmp_path: Path) -> None:
    model = trained_model()
    with pytest.raises(ValueError, match="training molecules"):
        adapt_model(model, _table([IODINE]))
    with pytest.raises(ValueError, match="no train.parquet"):
        adapt_model(model, _table([IODINE]), labels=tmp_path)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        adapt_model(model, _table([IODINE]), labels=tmp_path, epochs=0)
