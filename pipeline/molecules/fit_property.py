"""Stage `molecules_fit_property@<name>`: a molecule property of params.yaml
(`molecules.properties.<name>`: a table of SMILES and measured values) fitted onto
models/molecules/vae: the model adapted where it cannot write the table's molecules, a head
on the code and a learned oracle, written to models/molecules/properties/<name>/.
"""

from __future__ import annotations

import sys

from latentsteer.stage import run_stage

MODEL = "models/molecules/vae"
OUT = "models/molecules/properties"


def main(params: dict, name: str) -> None:
    # the domain's code that the run loads by name (its property support): imported here so
    # the stage's declared deps cover it
    import latentsteer.domains.molecules.own_property  # noqa: F401
    from latentsteer.learned.fit_stage import fit_stage

    device = str(((params.get("molecules") or {}).get("train") or {}).get("device", "auto"))
    fit_stage(params, "molecules.properties", name, MODEL, f"{OUT}/{name}", "molecules", device)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python pipeline/molecules/fit_property.py NAME")
    prop = sys.argv[1]
    run_stage(f"molecules_fit_property@{prop}", lambda params: main(params, prop))
