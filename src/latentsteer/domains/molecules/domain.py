"""The molecule domain object: SELFIES token rows, their networks and likelihood, SMILES in and
out, RDKit grids.

A sample is a row of ``L`` token indices of the model's :class:`Vocabulary` (float32, like
every domain's samples). The registry's :data:`MOLECULES` knows no vocabulary; a model's
own copy (:meth:`MoleculeDomain.configured`, or :meth:`MoleculeDomain.with_vocabulary` when
training) does, and is what turns tokens into SMILES and SMILES into tokens.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from latentsteer.domain import Domain, Start
from latentsteer.domains.molecules.methods import METHODS
from latentsteer.domains.molecules.networks import ConvEncoder, MLPDecoder
from latentsteer.domains.molecules.smiles_file import SUFFIXES, describe_lines, read_smiles_file
from latentsteer.domains.molecules.vocabulary import Vocabulary
from latentsteer.model import ModelConfig, MultiHeadVAE

if TYPE_CHECKING:
    from latentsteer.experiment_config import ExperimentConfig

# Success tolerances of goals on measured properties, in their units: about a tenth of each
# property's spread over the MOSES training molecules.
TOLERANCE = {
    "qed": 0.05,
    "logp": 0.5,
    "sa": 0.25,
    "plogp": 0.5,
    "mw": 25.0,
    "tpsa": 10.0,
    "rings": 0.5,
    "heavy_atoms": 1.0,
}


class MoleculeDomain(Domain):
    """Molecules as SELFIES token rows; see :mod:`latentsteer.domains.molecules`."""

    name = "molecules"
    tolerances = TOLERANCE
    sample_suffixes = (".smi", ".png")
    file_suffixes = SUFFIXES
    start_help = "random:N, or a .smi file (one SMILES per line)"
    property_support = "latentsteer.domains.molecules.own_property"
    table_help = "a CSV or Parquet file with a smiles column and one column per property"
    methods = METHODS
    # Its context proposes molecules for RDKit to measure (context.py): the experiment
    # settings it reads besides the common ones.
    settings = ("similarity", "bounds", "rounds", "proposer", "steps", "lr", "sigma",
                "population", "box", "init")  # fmt: skip
    # The measured defaults of molecule steering: a short ascent of small steps from each
    # start's code, searches near it (a box of ±0.6 per dimension spreads codes about as far
    # as random search's sigma: a uniform box's sd is 0.6/√3 = 0.35, so the two searches
    # differ in how they choose, not where), and results at least 0.4 similar to the start.
    experiment_defaults = {"steps": 40, "lr": 0.02, "sigma": 0.3, "population": 10,
                           "box": 0.6, "init": 10, "similarity": 0.4}  # fmt: skip
    # The training molecules' labels folder (--labels); by default the one the model
    # recorded at training, when it exists.
    sources = {"labels": None}
    context_loader = "latentsteer.domains.molecules.context:load_context"

    def check_experiment(self, cfg: ExperimentConfig) -> None:  # type: ignore[override]
        """Goals and bounds on RDKit's properties, at least one goal asking for a change,
        ``guide: false`` only for the latent ascent, and a similarity threshold (the
        ``proposer`` settings are checked by the context that steers, which reads them:
        :class:`~.proposal_settings.ProposalSettings`)."""
        from latentsteer.domains.molecules.properties import COLUMNS

        specs, bounds = cfg.specs, cfg.bounds
        for where, prop in [*((f"goal {s.text!r}", s.prop) for s in specs),
                            *(("bounds", p) for p in bounds)]:  # fmt: skip
            # RDKit's, and the properties fitted onto the model (their tolerances join the
            # model's domain: learned/card.py)
            known = [*COLUMNS, *(p for p in self.tolerances if p not in COLUMNS)]
            if prop not in known:
                raise ValueError(f"{where}: unknown property {prop!r}; accepted: "
                                 f"{', '.join(known)}")  # fmt: skip
        if all(s.kind == "keep" for s in specs):
            raise ValueError("at least one goal must ask for a change (max, min, a value or +D)")
        if not cfg.guide and cfg.method != "latent":
            raise ValueError(
                f"guide: false is the unguarded latent ascent; method "
                f"{cfg.method} has no unguarded form"
            )
        if cfg.similarity is None:
            raise ValueError("similarity must be a number in [0, 1] for molecules (0: none)")

    def __init__(self, vocabulary: Vocabulary | None = None, labels: str | None = None) -> None:
        self.vocabulary = vocabulary
        self.sample_shape = (vocabulary.length,) if vocabulary is not None else ()
        # Where the model's training molecules' labels lie, relative to its folder (recorded
        # by training): steering reads them from there, never from the working directory.
        self.labels = labels

    def with_vocabulary(self, vocabulary: Vocabulary, labels: str | None = None) -> MoleculeDomain:
        """This domain for a model of ``vocabulary`` (training builds one from its data),
        trained on the labels folder ``labels`` (a path relative to the model folder)."""
        return MoleculeDomain(vocabulary, labels)

    def _vocab(self) -> Vocabulary:
        if self.vocabulary is None:
            raise ValueError("this needs a molecule model's vocabulary; load the model first")
        return self.vocabulary

    # ---------------------------------------------------------------- model folders
    def config_entries(self) -> dict[str, object]:
        entries: dict[str, object] = {"vocabulary": self._vocab().to_json()}
        if self.labels is not None:
            entries["labels"] = self.labels
        return entries

    def configured(self, entries: Mapping[str, object]) -> MoleculeDomain:
        labels = entries.get("labels")
        return MoleculeDomain(Vocabulary.from_json(entries.get("vocabulary")),
                              labels if isinstance(labels, str) else None)  # fmt: skip

    # ---------------------------------------------------------------- networks
    def networks(self, config: ModelConfig) -> tuple[nn.Module, nn.Module]:
        """A convolutional encoder and a decoder of all positions at once (chosen by
        measurement over an autoregressive GRU: ``docs/molecules.md``); ``channels`` sizes
        the convolutions, ``hidden`` the dense layers of both."""
        v = self._vocab()
        d = config.latent_dim
        encoder = ConvEncoder(v.size, v.length, config.channels, config.hidden, d)
        return encoder, MLPDecoder(v.size, v.length, config.hidden, d)

    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Token cross-entropy summed over positions: logits ``(B, L, V)``, x ``(B, L)`` →
        ``(B,)`` nats."""
        return F.cross_entropy(logits.transpose(1, 2), x.long(), reduction="none").sum(1)

    def to_samples(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, L, V)`` logits → ``(B, L)`` the most likely tokens (as float32)."""
        return logits.argmax(dim=-1).float()

    def check_samples(self, x: torch.Tensor) -> torch.Tensor:
        v = self._vocab()
        if x.ndim != 2 or x.shape[1] != v.length:
            raise ValueError(f"molecules must be token rows of shape (n, {v.length}); got "
                             f"{tuple(x.shape)}")  # fmt: skip
        if not torch.isfinite(x).all() or (x != x.round()).any():
            raise ValueError("token rows must hold whole token indices")
        if len(x) and (x.min() < 0 or x.max() >= v.size):
            raise ValueError(f"token indices must be from 0 to {v.size - 1}")
        return x

    # ---------------------------------------------------------------- SMILES in and out
    def encode_smiles(
        self, smiles: Sequence[str], names: Sequence[str] | None = None
    ) -> torch.Tensor:
        """SMILES → ``(n, L)`` token rows of this model's vocabulary (canonicalised first).

        Args:
            names: what messages call each molecule (``"line 3"``); by default its position.

        Raises:
            ValueError: a SMILES that does not parse, several fragments, a token outside
                the vocabulary or a molecule too long (one line naming the molecule).
        """
        import selfies as sf
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        label = list(names) if names is not None else [f"molecule {i}" for i in range(len(smiles))]
        encoded, bad, split = [], [], []
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s)
            if mol is None:
                bad.append(i)
            elif len(Chem.GetMolFrags(mol)) != 1:
                split.append(i)
            else:
                try:
                    encoded.append(sf.encoder(Chem.MolToSmiles(mol)))
                except sf.EncoderError:
                    bad.append(i)
        for rows, problem in ((bad, "does not parse as SMILES"), (split, "is several molecules")):
            if rows:
                shown = ", ".join(f"{label[i]} ({smiles[i]!r})" for i in rows[:3])
                more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
                raise ValueError(f"{shown}{more}: {problem}")
        tokens = self._vocab().encode(encoded, label)
        return torch.as_tensor(tokens, dtype=torch.float32)

    def to_smiles(self, samples: torch.Tensor) -> list[str]:
        """``(n, L)`` token rows → canonical SMILES (``""`` for a row of padding only);
        large batches are decoded in worker processes (:mod:`.decoding`)."""
        from latentsteer.domains.molecules.decoding import selfies_to_smiles

        return selfies_to_smiles(self._vocab().decode(samples.detach().cpu().long().numpy()))

    # ---------------------------------------------------------------- starts
    def parse_start(
        self,
        spec: str,
        model: MultiHeadVAE,
        seed: int = 0,
        data_root: str | os.PathLike[str] | None = None,
    ) -> Start:
        """``random:N`` prior draws, or the molecules of a ``.smi`` file encoded to their
        posterior means."""
        if re.fullmatch(r"random:\d+", spec) or not spec.lower().endswith(SUFFIXES):
            return super().parse_start(spec, model, seed, data_root)
        x = self.read_samples(spec)
        return Start(model.encode(x), x, None, spec)

    def read_samples(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """``(n, L)`` token rows of a ``.smi`` file's molecules (errors name the line)."""
        found = read_smiles_file(path)
        return self.encode_smiles(found.smiles, [f"line {n}" for n in found.lines])

    # ---------------------------------------------------------------- shows
    def save_grid(self, samples: torch.Tensor, path: str | os.PathLike[str]) -> None:
        """Draw ``(rows, cols, L)`` molecules with RDKit, each with its measured QED and logP."""
        from latentsteer.domains.molecules.drawing import draw_grid

        rows, cols = samples.shape[:2]
        smiles = self.to_smiles(samples.reshape(rows * cols, -1))
        draw_grid(smiles, cols, path)

    def write_samples(self, samples: torch.Tensor, path: str | os.PathLike[str]) -> None:
        """``.smi``: one canonical SMILES per line; ``.png``: an RDKit grid."""
        if Path(path).suffix.lower() == ".png":
            return super().write_samples(samples, path)
        Path(path).write_text("".join(f"{s}\n" for s in self.to_smiles(samples)))
        return None

    def measure_file(
        self,
        path: str | os.PathLike[str],
        workers: int | None = None,
        options: Mapping[str, object] | None = None,
    ) -> pd.DataFrame:
        """RDKit's measures of a ``.smi`` file (:mod:`.properties`): ``line`` (1-based),
        ``smiles`` as written, then ``valid`` and the properties. A line that does not parse
        keeps its row with ``valid`` false and empty values; the caller reports it."""
        from latentsteer.domains.molecules.properties import measure_molecules

        found = read_smiles_file(path)
        table = measure_molecules(found.smiles, workers=workers, progress=False)
        table.insert(0, "line", found.lines)
        table.insert(1, "smiles", found.smiles)
        bad = [n for n, ok in zip(found.lines, table.valid, strict=True) if not ok]
        table.attrs["problems"] = (
            f"{describe_lines(bad)} of {Path(path).name} did not parse as one molecule "
            "(valid = false)" if bad else ""
        )  # fmt: skip
        return table

    # ---------------------------------------------------------------- your own property
    def moved(
        self, old_dir: str | os.PathLike[str], new_dir: str | os.PathLike[str]
    ) -> MoleculeDomain:
        """The labels folder, recorded relative to the model folder, rewritten for a copy of
        the folder at ``new_dir``."""
        if self.labels is None:
            return self
        where = (Path(old_dir) / self.labels).resolve()
        return MoleculeDomain(self.vocabulary,
                              os.path.relpath(where, Path(new_dir).resolve()))  # fmt: skip


MOLECULES = MoleculeDomain()
