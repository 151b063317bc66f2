"""The molecule model: SELFIES networks, the vocabulary in the model folder, SMILES in and out."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from molecule_model import CONFIG, SMILES, tiny_data, trained_model

from latentsteer.domains.molecules.domain import MOLECULES
from latentsteer.domains.molecules.networks import GRUDecoder
from latentsteer.errors import LatentsteerError
from latentsteer.loading import load_model
from latentsteer.model import MultiHeadVAE, save_model


def canonical(smiles: list[str]) -> list[str]:
    from rdkit import Chem

    return [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles]


def test_the_tiny_model_rebuilds_its_molecules_from_their_codes():
    model = trained_model()
    x = model.domain.encode_smiles(SMILES)
    back = model.domain.to_smiles(model.decode(model.encode(x)))
    hits = sum(a == b for a, b in zip(back, canonical(SMILES), strict=True))
    assert hits >= 12, list(zip(back, SMILES, strict=True))


def test_the_gru_candidate_decodes_greedily_as_it_was_taught():
    # The autoregressive candidate of the architecture comparison: fed its own greedy
    # tokens, its teacher-forced pass predicts the same tokens (the two paths are one model).
    torch.manual_seed(0)
    decoder = GRUDecoder(vocab=7, length=9, hidden=16, latent=4).eval()
    z = torch.randn(5, 4)
    with torch.no_grad():
        greedy = decoder(z).argmax(-1)
        forced = decoder(z, greedy.float()).argmax(-1)
    assert greedy.shape == (5, 9) and torch.equal(greedy, forced)


def test_reconstruction_nll_is_the_summed_token_cross_entropy():
    vocabulary, data = tiny_data()
    model = MultiHeadVAE(CONFIG, MOLECULES.with_vocabulary(vocabulary))
    logits = torch.randn(3, vocabulary.length, vocabulary.size)
    x = data.images[:3]
    want = -F.log_softmax(logits, -1).gather(2, x.long().unsqueeze(2)).squeeze(2).sum(1)
    assert torch.allclose(model.domain.reconstruction_nll(logits, x), want, atol=1e-5)
    assert model(x).logits.shape == (3, vocabulary.length, vocabulary.size)


def test_the_folder_keeps_the_vocabulary_and_loads_the_same_model(tmp_path):
    model = trained_model()
    save_model(model, tmp_path / "vae")
    meta = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert meta["vocabulary"] == model.domain.vocabulary.to_json()
    assert meta["model"]["domain"] == "molecules"
    again = load_model(tmp_path / "vae")
    assert again.domain.vocabulary == model.domain.vocabulary
    z = model.sample_prior(4, seed=1)
    assert torch.equal(again.decode(z), model.decode(z))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda m: m.pop("vocabulary"), "has no vocabulary entry: not a molecule model folder"),
        (lambda m: m["vocabulary"].update(tokens=[1, 2]), "malformed vocabulary entry"),
        (lambda m: m["vocabulary"].update(length="long"), "length must be an integer"),
        (lambda m: m["vocabulary"]["tokens"].pop(), "does not fit"),  # weights of another size
    ],
)
def test_a_damaged_vocabulary_entry_is_one_line(tmp_path, damage, message):
    save_model(trained_model(), tmp_path / "vae")
    path = tmp_path / "vae" / "config.json"
    meta = json.loads(path.read_text())
    damage(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(LatentsteerError, match=message):
        load_model(tmp_path / "vae")


@pytest.mark.parametrize(
    "smiles, message",
    [
        (["CCO", "C1CC"], r"line 2 \('C1CC'\): does not parse as SMILES"),
        (["CC.O"], r"line 1 \('CC.O'\): is several molecules"),
        (["CCS"], r"line 1: token\(s\) \[S\] outside the model's vocabulary \(\[=Branch1\], "),
        (["C" * 30], "line 1: 30 tokens, longer than the model's"),
    ],
)
def test_smiles_the_model_cannot_take_are_one_line(smiles, message):
    domain = trained_model().domain
    with pytest.raises(ValueError, match=message):
        domain.encode_smiles(smiles, [f"line {i + 1}" for i in range(len(smiles))])


def test_token_rows_are_checked():
    model = trained_model()
    n = model.domain.vocabulary.length
    with pytest.raises(ValueError, match=rf"token rows of shape \(n, {n}\); got \(2, 3\)"):
        model.encode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="whole token indices"):
        model.encode(torch.full((1, n), 0.5))
    with pytest.raises(ValueError, match="token indices must be from 0 to"):
        model.encode(torch.full((1, n), 99.0))


def test_a_domain_without_vocabulary_says_so():
    with pytest.raises(ValueError, match="needs a molecule model's vocabulary"):
        MOLECULES.encode_smiles(["CCO"])
