"""Stage `molecules_steer_property@<name>`: a molecule experiment on a fitted property
(`molecules.property_experiments.<name>`), latent ascent and its baselines on the same starts
and oracle budget, on models/molecules/properties/<property>: the fitted property's guide
steers, its certifier grades (inside its applicability domain only), RDKit measures the
rest. Writes reports/molecules/properties/<name>/<method>/ and their metrics.json.

`start: lowest:N` starts from the N molecules of the property's own table with the lowest
measured values (written to <out>/starts.smi).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from latentsteer.stage import run_stage

MODELS = "models/molecules/properties"
OUT = Path("reports/molecules/properties")


def main(params: dict, name: str) -> None:
    # the domain's code that the run loads by name (its steering context, its property
    # support): imported here so the stage's declared deps cover it
    import latentsteer.domains.molecules.context  # noqa: F401
    import latentsteer.domains.molecules.own_property  # noqa: F401
    from latentsteer.atomic import atomic_file
    from latentsteer.domains.molecules.property_oracle import load_molecule_oracle
    from latentsteer.learned.steer_stage import steer_stage

    molecules = params.get("molecules") or {}
    entry = (molecules.get("property_experiments") or {}).get(name) or {}
    start = str(entry.get("start", ""))
    given = None
    if m := re.fullmatch(r"lowest:(\d+)", start):
        # the table the property was fitted from, as the model folder stores it
        folder = Path(MODELS) / str(entry.get("property")) / "properties" / str(
            entry.get("property"))  # fmt: skip
        table = load_molecule_oracle(folder)
        smiles, values = table.smiles, table.values
        order = sorted(range(len(values)), key=lambda i: (values[i], i))[: int(m.group(1))]
        given = OUT / f"{name}.starts.smi"
        with atomic_file(given) as tmp:
            tmp.write_text("".join(f"{smiles[i]}\n" for i in order))
        given = str(given)
    device = str((molecules.get("train") or {}).get("device", "auto"))
    steer_stage(params, "molecules.property_experiments", name, MODELS, OUT / name,
                "molecules", start=given, device=device)  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python pipeline/molecules/steer_property.py EXPERIMENT")
    experiment = sys.argv[1]
    run_stage(f"molecules_steer_property@{experiment}", lambda params: main(params, experiment))
