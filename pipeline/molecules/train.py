"""Stage `molecules_train`: the SELFIES VAE with property heads -> models/molecules/vae/.

The vocabulary (tokens and length) is fitted to the training molecules and saved in the
model folder; validation molecules it cannot encode are left out and counted. One MLflow run
in the experiment `latentsteer-molecules`; `molecules.train.nproc: N > 1` trains with DDP
under torchrun (latentsteer.train_stage).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from latentsteer.config import section
from latentsteer.domains.molecules.domain import MOLECULES
from latentsteer.domains.molecules.labelled import load_molecules, read_molecule_labels
from latentsteer.domains.molecules.vocabulary import Vocabulary
from latentsteer.stage import run_stage
from latentsteer.tracking import data_hash
from latentsteer.train import TrainConfig
from latentsteer.train_stage import TrainingData, model_config, run_training

LABELS = "data/molecules/labels"
OUT = "models/molecules/vae"
CHECKPOINT = Path("checkpoints/molecules_train/last.pt")  # git-ignored; survives a kill


def main(params: dict[str, Any]) -> None:
    section_ = params.get("molecules") or {}
    model = {"domain": "molecules", **(section_.get("model") or {})}
    mcfg = model_config(model, "molecules.model")
    if mcfg.domain != "molecules":
        raise ValueError(
            f"params.yaml: molecules.model.domain must be molecules; got {mcfg.domain!r}"
        )
    cfg = section({"molecules.train": section_.get("train")}, "molecules.train", TrainConfig)

    def load(device: torch.device) -> TrainingData:
        train_table = read_molecule_labels(LABELS, "train")
        vocabulary = Vocabulary.fit(train_table.selfies.dropna())
        train = load_molecules(LABELS, "train", mcfg.heads, vocabulary, cfg.limit)
        val = load_molecules(LABELS, "val", mcfg.heads, vocabulary, cfg.limit)
        print(f"molecules_train: vocabulary of {vocabulary.size} tokens, length "
              f"{vocabulary.length}; {len(train.data)} training and {len(val.data)} validation "
              f"molecules ({val.dropped} validation molecules outside the vocabulary)")  # fmt: skip
        # the model folder records where its labels lie, so steering finds them from anywhere
        domain = MOLECULES.with_vocabulary(vocabulary, os.path.relpath(LABELS, OUT))
        return TrainingData(train.data.to(device), val.data.to(device), domain, data_hash(LABELS))

    run_training("molecules_train", __file__, mcfg, cfg, load, OUT, CHECKPOINT)


if __name__ == "__main__":
    run_stage("molecules_train", main)
