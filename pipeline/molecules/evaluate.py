"""Stage `molecules_evaluate`: test-set metrics and a grid of prior samples for the molecule VAE.

Writes reports/molecules/evaluate.json (DVC metrics: reconstruction, heads' R² and MAE, the
MOSES metrics of 10 000 prior samples next to those of as many training molecules),
reports/molecules/prior_samples.smi and reports/molecules/figures/*.png, and logs all of it
to one MLflow run in `latentsteer-molecules`, spanning the work (the model read to the files
written). RDKit measures every number; no head is trusted for any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentsteer.stage import run_stage

REPORT = Path("reports/molecules/evaluate.json")
SAMPLES = Path("reports/molecules/prior_samples.smi")
RECONSTRUCTIONS = Path("reports/molecules/reconstructions.csv")
FIGURES = Path("reports/molecules/figures")
MODEL = "models/molecules/vae"
LABELS = "data/molecules/labels"
FILTERS = "data/molecules/filters.csv"


@dataclass(frozen=True)
class MoleculeEvaluateConfig:
    """params.yaml: molecules.evaluate."""

    samples: int = 10_000  # prior draws measured (MOSES measures 10 000 at a time)
    seed: int = 0  # seeds the prior draws
    grid: int = 24  # prior samples drawn in the figure

    def __post_init__(self) -> None:
        for key in ("samples", "grid"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"molecules.evaluate.{key} must be an integer >= 2; got {value!r}")


def main(params: dict[str, Any]) -> None:
    import pandas as pd

    from latentsteer import tracking
    from latentsteer.atomic import atomic_file, write_json, write_table
    from latentsteer.config import section
    from latentsteer.devices import resolve_device
    from latentsteer.domains.molecules.domain import MOLECULES
    from latentsteer.domains.molecules.drawing import draw_grid
    from latentsteer.domains.molecules.evaluation import evaluate_molecules, reconstruction_table
    from latentsteer.domains.molecules.generation import MosesFilters
    from latentsteer.domains.molecules.labelled import load_molecules, read_molecule_labels
    from latentsteer.loading import load_model
    from latentsteer.tracking import data_hash

    molecules = params.get("molecules") or {}
    cfg = section({"molecules.evaluate": molecules.get("evaluate")}, "molecules.evaluate",
                  MoleculeEvaluateConfig)  # fmt: skip
    span = tracking.Span.begin()  # the run, logged once the files are written, starts here
    device = resolve_device(str((molecules.get("train") or {}).get("device", "auto")))
    model = load_model(MODEL, device)
    domain = model.domain
    if domain.name != MOLECULES.name:
        raise ValueError(f"{MODEL} holds a {domain.name} model, not a molecule model")
    test = load_molecules(LABELS, "test", model.config.heads, domain.vocabulary)  # type: ignore[attr-defined]
    # The reference of "exact" is what decoding the test molecule's own tokens gives.
    test_smiles = domain.to_smiles(test.data.images)  # type: ignore[attr-defined]
    train_table = read_molecule_labels(LABELS, "train")
    training = train_table.canonical.dropna().tolist()
    filters = MosesFilters(pd.read_csv(FILTERS))
    result = evaluate_molecules(
        model, test.data.to(device), test_smiles, training, filters, cfg.samples, cfg.seed
    )
    m = {**result.metrics, "test_outside_vocabulary": test.dropped}

    FIGURES.mkdir(parents=True, exist_ok=True)
    cols = min(6, cfg.grid)
    with atomic_file(FIGURES / "prior_samples.png") as tmp:
        draw_grid(result.prior[: cfg.grid], cols, tmp)
    table = reconstruction_table(test_smiles, result.reconstructed)
    write_table(table, RECONSTRUCTIONS)
    pairs = [s for row in table.iloc[:12].itertuples() for s in (row.test, row.reconstructed)]
    with atomic_file(FIGURES / "reconstructions.png") as tmp:
        draw_grid(pairs, 6, tmp)  # test | reconstruction, three pairs a row
    with atomic_file(SAMPLES) as tmp:
        tmp.write_text("".join(f"{s}\n" for s in result.prior))
    write_json(m, REPORT)
    span.end()

    tags = {"data_hash": data_hash(LABELS)}
    with tracking.start_run(
        "molecules_evaluate", stage="molecules_evaluate", tags=tags, domain="molecules", span=span
    ) as run:
        run.log_metrics(m)
        run.log_artifacts(FIGURES, "figures")
        run.log_artifact(REPORT)
        run.log_artifact(SAMPLES)
    keys = ["reconstruction", *(f"{h}_r2" for h in model.head_names),
            "prior_valid", "prior_unique", "prior_novel", "prior_int_div", "prior_filters",
            "prior_fcd", "training_fcd"]  # fmt: skip
    print("molecules_evaluate: " + ", ".join(f"{k} {m[k]:.4g}" for k in keys))


if __name__ == "__main__":
    run_stage("molecules_evaluate", main)
