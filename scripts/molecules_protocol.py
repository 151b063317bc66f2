"""The constrained penalized-logP protocol at any number of starts, latent ascent only.

    python scripts/molecules_protocol.py --starts 800 [--budget 50] [--replicas 8] ...

Takes the N test molecules with the lowest penalized logP (as the `plogp_constrained` stage,
which runs 200 by default), proposes once, grades at δ = 0, 0.2, 0.4, 0.6, and prints a
Markdown table of RDKit's results: mean ± sd improvement, mean similarity of the changed
molecules, success, the heads' success and the RDKit calls a start spent. As the stage does,
the ascent also offers the nearest training molecules and reads the heads on RDKit's scale
(both from the labels). The budget, rounds and seed, and any proposer setting
(`ProposalSettings`: replicas, token_samples, ...), may be given as --field value.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from latentsteer.domains.molecules.context import MoleculeContext
from latentsteer.domains.molecules.domain import MOLECULES
from latentsteer.domains.molecules.experiments import StartsConfig, select_starts
from latentsteer.domains.molecules.labelled import read_molecule_labels
from latentsteer.domains.molecules.proposal_settings import ProposalSettings
from latentsteer.domains.molecules.proposers import propose_for
from latentsteer.domains.molecules.starts import read_starts
from latentsteer.experiment_config import configure
from latentsteer.loading import load_model

ENGINE = {"budget": int, "rounds": int, "seed": int, "steps": int, "lr": float}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=800)
    parser.add_argument("--model", default="models/molecules/vae")
    parser.add_argument("--labels", default="data/molecules/labels")
    parser.add_argument("--thresholds", default="0,0.2,0.4,0.6")
    proposer = {f.name: type(f.default) for f in dataclasses.fields(ProposalSettings)}
    for name, kind in {**ENGINE, **proposer}.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    args = parser.parse_args()
    given = {k: getattr(args, k) for k in ENGINE if getattr(args, k) is not None}
    given["proposer"] = {k: getattr(args, k) for k in proposer if getattr(args, k) is not None}
    model = load_model(args.model, "cpu")
    ctx = MoleculeContext(model, Path(args.labels))
    test = read_molecule_labels(args.labels, "test")
    chosen = select_starts(test, model.domain.vocabulary, StartsConfig(args.starts, "plogp"))
    starts = read_starts(model, chosen.canonical.tolist())
    base = configure(MOLECULES, {"goals": ["plogp=max"], **given})
    began = time.perf_counter()
    proposals = propose_for(model, starts.tokens, base)  # the first round, for every δ
    print(f"{len(starts.smiles)} starts (penalized logP {chosen.plogp.mean():.2f} on average); "
          f"{sum(map(len, proposals.smiles)) / len(starts.smiles):.0f} candidates a start; "
          f"start codes decoding to the start: {proposals.reconstructed.mean():.1%}; "
          f"settings {given}\n")  # fmt: skip
    print("| δ | improvement | similarity | success | heads' success | RDKit calls a start |")
    print("|---|---|---|---|---|---|")
    for delta in map(float, args.thresholds.split(",")):
        m = ctx.steer(dataclasses.replace(base, similarity=delta), starts, proposals).metrics
        print(f"| {delta:g} | {m['improvement_plogp']:.2f} ± {m['improvement_plogp_sd']:.2f} | "
              f"{m['similarity']:.2f} | {m['success_rate']:.1%} | "
              f"{m['predicted_success_rate']:.1%} | {m['oracle_calls']:.1f} |",
              flush=True)  # fmt: skip
    print(f"\n{time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
