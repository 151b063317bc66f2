"""The constrained penalized-logP protocol at any number of starts, latent ascent only.

    python scripts/molecules_protocol.py --starts 800 [--budget 50] [--replicas 8] ...

Takes the N test molecules with the lowest penalized logP (as the `plogp_constrained` stage,
which runs 200 by default), proposes once, grades at δ = 0, 0.2, 0.4, 0.6, and prints a
Markdown table of RDKit's results: mean ± sd improvement, mean similarity of the changed
molecules, success, the heads' success and the RDKit calls a start spent. As the stage does,
the ascent also offers the nearest training molecules and reads the heads on RDKit's scale
(both from the labels). Any MoleculeTask field may be given as --field value.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from latentsteer.domains.molecules.calibration import calibration_from_labels
from latentsteer.domains.molecules.experiments import StartsConfig, select_starts
from latentsteer.domains.molecules.labelled import read_molecule_labels
from latentsteer.domains.molecules.similarity import fingerprints
from latentsteer.domains.molecules.steering import (
    property_spreads,
    propose_for,
    read_starts,
    steer_molecules,
)
from latentsteer.domains.molecules.task import MoleculeTask
from latentsteer.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=800)
    parser.add_argument("--model", default="models/molecules/vae")
    parser.add_argument("--labels", default="data/molecules/labels")
    parser.add_argument("--thresholds", default="0,0.2,0.4,0.6")
    for f in dataclasses.fields(MoleculeTask):
        if f.name not in ("goals", "similarity", "bounds", "method"):
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default),
                                default=None)  # fmt: skip
    args = parser.parse_args()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(MoleculeTask)
             if getattr(args, f.name, None) is not None}  # fmt: skip
    model = load_model(args.model, "cpu")
    test = read_molecule_labels(args.labels, "test")
    chosen = select_starts(test, model.domain.vocabulary, StartsConfig(args.starts, "plogp"))
    starts = read_starts(model, chosen.canonical.tolist())
    base = MoleculeTask(goals=["plogp=max"], **given)
    spread = property_spreads(model, base.properties)
    train = read_molecule_labels(args.labels, "train")
    train = train[train.valid].reset_index(drop=True)
    calibration = calibration_from_labels(model, args.labels)
    began = time.perf_counter()
    fps = fingerprints(train.canonical.tolist())
    proposals = propose_for(model, starts.tokens, base)  # the first round, for every δ
    print(f"{len(starts.smiles)} starts (penalized logP {chosen.plogp.mean():.2f} on average); "
          f"{sum(map(len, proposals.smiles)) / len(starts.smiles):.0f} candidates a start; "
          f"start codes decoding to the start: {proposals.reconstructed.mean():.1%}; "
          f"task {given or 'defaults'}\n")  # fmt: skip
    print("| δ | improvement | similarity | success | heads' success | RDKit calls a start |")
    print("|---|---|---|---|---|---|")
    cache: dict = {}
    for delta in map(float, args.thresholds.split(",")):
        task = dataclasses.replace(base, similarity=delta)
        m = steer_molecules(
            model,
            starts,
            task,
            spread,
            dataset=train,
            dataset_fps=fps,
            cache=cache,
            proposals=proposals,
            calibration=calibration,
        ).metrics
        print(f"| {delta:g} | {m['improvement_plogp']:.2f} ± {m['improvement_plogp_sd']:.2f} | "
              f"{m['similarity']:.2f} | {m['success']:.1%} | {m['heads_success']:.1%} | "
              f"{m['oracle_calls']:.1f} |", flush=True)  # fmt: skip
    print(f"\n{time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
