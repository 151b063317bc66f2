"""The SELFIES vocabulary: round trips, padding, and one-line errors."""

from __future__ import annotations

import json

import pytest
import selfies as sf
from rdkit import Chem

from latentsteer.domains.molecules.vocabulary import PAD, Vocabulary

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(Cl)cc1", "C1CCNCC1"]
SELFIES = [sf.encoder(s) for s in SMILES]


def test_fit_encode_decode_round_trip():
    vocab = Vocabulary.fit(SELFIES)
    assert vocab.tokens[0] == PAD and list(vocab.tokens[1:]) == sorted(vocab.tokens[1:])
    assert vocab.length == max(len(list(sf.split_selfies(s))) for s in SELFIES)
    codes = vocab.encode(SELFIES)
    assert codes.shape == (4, vocab.length) and (codes[0, 3:] == 0).all()  # CCO: 3 tokens
    back = vocab.decode(codes)
    assert back == SELFIES
    for s, original in zip(back, SMILES, strict=True):
        want = Chem.MolToSmiles(Chem.MolFromSmiles(original))
        assert Chem.MolToSmiles(Chem.MolFromSmiles(sf.decoder(s))) == want


def test_out_of_vocabulary_and_too_long_are_one_line():
    vocab = Vocabulary.fit(SELFIES[:1], margin=10)  # [C][C][O], up to 13 tokens
    unknown = r"molecule 0: token\(s\) \[=Branch1\], \[=C\], \[Ring1\] outside the model.s"
    with pytest.raises(ValueError, match=unknown + r" vocabulary \(\[C\], \[O\]\)"):
        vocab.encode([sf.encoder("c1ccccc1")])
    vocab = Vocabulary.fit(SELFIES[:1])
    with pytest.raises(ValueError, match="molecule 1: 4 tokens, longer than the model's 3"):
        vocab.encode(["[C][C][O]", "[C][C][C][O]"])


def test_json_round_trip_and_damaged_entries():
    vocab = Vocabulary.fit(SELFIES, margin=2)
    assert Vocabulary.from_json(json.loads(json.dumps(vocab.to_json()))) == vocab
    with pytest.raises(ValueError, match="no vocabulary entry: not a molecule model folder"):
        Vocabulary.from_json(None)
    with pytest.raises(ValueError, match="malformed vocabulary entry .*'length'"):
        Vocabulary.from_json({"tokens": list(vocab.tokens)})
    with pytest.raises(ValueError, match="starts with the padding token"):
        Vocabulary(("[C]",), 3)


def test_fits_says_which_molecules_encode():
    vocab = Vocabulary.fit(SELFIES[:1])  # [C][C][O]
    assert vocab.fits(["[C][O]", "[C][C][C][O]", "[N]", ""]).tolist() == [True, False, False, False]


def test_selfies_decode_to_canonical_smiles_in_order_whatever_was_remembered(monkeypatch):
    from latentsteer.domains.molecules import decoding

    want = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in SMILES]
    strings = SELFIES + SELFIES[:2] + [""]
    assert decoding.selfies_to_smiles(strings, workers=1) == want + want[:2] + [""]
    # A full memory starts over without losing what this call needs.
    monkeypatch.setattr(decoding, "REMEMBER", 3)
    monkeypatch.setattr(decoding, "_DECODED", {SELFIES[0]: want[0]})
    assert decoding.selfies_to_smiles(SELFIES[::-1], workers=1) == want[::-1]
    assert set(decoding._DECODED) == set(SELFIES[1:])  # only this call's new strings
    # A batch larger than the whole memory is answered but not kept.
    monkeypatch.setattr(decoding, "_DECODED", {})
    monkeypatch.setattr(decoding, "REMEMBER", 2)
    assert decoding.selfies_to_smiles(SELFIES, workers=1) == want and not decoding._DECODED
    # Worker processes give the same answers.
    monkeypatch.setattr(decoding, "POOL_FROM", 2)
    monkeypatch.setattr(decoding, "_DECODED", {})
    assert decoding.selfies_to_smiles(SELFIES, workers=2) == want
