"""A tiny seeded molecule model, trained for a few seconds on a dozen molecules."""

from __future__ import annotations

import functools

import selfies as sf
import torch

from latentsteer.domains.molecules.domain import MOLECULES
from latentsteer.domains.molecules.properties import measure_molecules
from latentsteer.domains.molecules.vocabulary import Vocabulary
from latentsteer.model import HeadSpec, ModelConfig, MultiHeadVAE
from latentsteer.train import Dataset, TrainConfig, fit

SMILES = [
    "CCO", "CCN", "CCC", "CCCO", "CCCN", "c1ccccc1", "c1ccccc1O", "c1ccccc1N",
    "CC(=O)O", "CC(=O)N", "OCCO", "NCCN", "C1CCCCC1", "C1CCNCC1", "CC(C)O", "CC(C)N",
]  # fmt: skip
HEADS = (HeadSpec("qed", column="qed"), HeadSpec("logp", column="logp"))
CONFIG = ModelConfig(
    latent_dim=8, channels=8, hidden=48, head_hidden=16, heads=HEADS, domain="molecules"
)


def tiny_data() -> tuple[Vocabulary, Dataset]:
    table = measure_molecules(SMILES, workers=1, progress=False)
    vocabulary = Vocabulary.fit(table.selfies, margin=2)
    x = torch.as_tensor(vocabulary.encode(list(table.selfies)), dtype=torch.float32)
    targets = {h.column: torch.tensor(table[h.column].to_numpy(), dtype=torch.float32)
               for h in HEADS}  # fmt: skip
    return vocabulary, Dataset(x, targets)


@functools.cache
def _trained_state() -> tuple[Vocabulary, dict[str, torch.Tensor]]:
    vocabulary, data = tiny_data()
    torch.manual_seed(0)
    model = MultiHeadVAE(CONFIG, MOLECULES.with_vocabulary(vocabulary))
    model.set_target_scaling(data.targets)
    cfg = TrainConfig(epochs=200, batch_size=16, lr=1e-2, beta=0.01, warmup_epochs=0, shift=0)
    fit(model, data, data, cfg, progress=False)
    return vocabulary, {k: v.clone() for k, v in model.state_dict().items()}


def trained_model() -> MultiHeadVAE:
    """A fresh copy of the tiny model, trained once per test session (about 10 s)."""
    vocabulary, state = _trained_state()
    model = MultiHeadVAE(CONFIG, MOLECULES.with_vocabulary(vocabulary))
    model.load_state_dict(state)
    return model.eval()


def selfies_of(smiles: list[str]) -> list[str]:
    return [sf.encoder(s) for s in smiles]
