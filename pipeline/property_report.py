"""Stage `property_report`: reports/properties.md, the fitted properties of both domains and
every experiment steered on them as measured, and the same page stamped with commit, date
and machine as docs/results/properties.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from latentsteer.stage import run_stage

FITS = {"mnist": Path("models/properties"), "molecules": Path("models/molecules/properties")}
RESULTS = {"mnist": Path("reports/properties"),
           "molecules": Path("reports/molecules/properties")}  # fmt: skip
OUT = Path("reports/properties.md")
PAGE = Path("docs/results/properties.md")


def _read(path: Path, stage: str) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path} is missing; run `dvc repro {stage}`")
    return json.loads(path.read_text())


def main(params: dict[str, Any]) -> None:
    from latentsteer.atomic import atomic_file
    from latentsteer.learned.report import properties_page
    from latentsteer.stamp import stamped_page

    molecules = params.get("molecules") or {}
    sections = {
        "mnist": (params.get("properties") or {}, params.get("property_experiments") or {},
                  "fit_property", "steer_property"),
        "molecules": (molecules.get("properties") or {},
                      molecules.get("property_experiments") or {},
                      "molecules_fit_property", "molecules_steer_property"),
    }  # fmt: skip
    fits: dict[str, Any] = {}
    experiments: dict[str, Any] = {}
    for domain, (props, exps, fit_stage, steer_stage) in sections.items():
        for name in props:
            card = _read(FITS[domain] / name / "metrics.json", f"{fit_stage}@{name}")
            fits[name] = card["properties"][name]
        for name in exps:
            path = RESULTS[domain] / name / "metrics.json"
            experiments[name] = _read(path, f"{steer_stage}@{name}")
    text = properties_page(fits, experiments)
    with atomic_file(OUT) as tmp:
        tmp.write_text(text)
    with atomic_file(PAGE) as tmp:
        tmp.write_text(stamped_page(text, "property_report"))
    print(f"property_report: {len(fits)} properties, {len(experiments)} experiments -> {OUT}")


if __name__ == "__main__":
    run_stage("property_report", main)
