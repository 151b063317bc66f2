"""Stage `molecules_report`: reports/molecules/steering.md, the table of every molecule steering
experiment and method as measured, followed by the published rows (ZINC250k) apart, and the
same page stamped with commit, date and machine as docs/results/molecules.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from latentsteer.stage import run_stage

STEER = Path("reports/molecules/steer")
OUT = Path("reports/molecules/steering.md")
PAGE = Path("docs/results/molecules.md")  # OUT with the stamp, tracked by git


def main(params: dict[str, Any]) -> None:
    from latentsteer.atomic import atomic_file
    from latentsteer.domains.molecules.steering_table import steering_table
    from latentsteer.stamp import stamped_page

    names = list((params.get("molecules") or {}).get("experiments") or {})
    experiments = {}
    for name in names:
        path = STEER / f"{name}.json"
        if not path.is_file():
            raise ValueError(f"{path} is missing; run `dvc repro molecules_steer@{name}`")
        experiments[name] = json.loads(path.read_text())
    text = (
        "# Molecule steering, as measured\n\n"
        "RDKit measures every result from its SMILES; `heads' success` is the model's own "
        "verdict on the same results. Baselines run on the first starts of each task, beside "
        "the ascent on those same starts. Rows marked *ZINC250k, published* are the "
        "literature's, on other data, for context only.\n\n" + steering_table(experiments)
    )
    with atomic_file(OUT) as tmp:
        tmp.write_text(text)
    with atomic_file(PAGE) as tmp:  # the same page, stamped, for the docs
        tmp.write_text(stamped_page(text, "molecules_report"))
    print(f"molecules_report: {sum(len(r) for r in experiments.values())} rows -> {OUT}")


if __name__ == "__main__":
    run_stage("molecules_report", main)
