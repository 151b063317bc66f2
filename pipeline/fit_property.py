"""Stage `fit_property@<name>`: a digit property of params.yaml (`properties.<name>`: a table
of images and measured values) fitted onto models/vae_calibrated: a head on the code and a
learned oracle, written to models/properties/<name>/ (`latentsteer fit-property`).
"""

from __future__ import annotations

import sys

from latentsteer.stage import run_stage

MODEL = "models/vae_calibrated"
OUT = "models/properties"


def main(params: dict, name: str) -> None:
    # the domain's code that the run loads by name (its property support): imported here so
    # the stage's declared deps cover it
    import latentsteer.domains.mnist.own_property  # noqa: F401
    from latentsteer.learned.fit_stage import fit_stage

    device = str((params.get("optimize") or {}).get("device", "auto"))
    fit_stage(params, "properties", name, MODEL, f"{OUT}/{name}", "mnist", device)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python pipeline/fit_property.py NAME")
    prop = sys.argv[1]
    run_stage(f"fit_property@{prop}", lambda params: main(params, prop))
