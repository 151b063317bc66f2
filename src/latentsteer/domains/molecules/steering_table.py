"""The molecule steering table of the report: task × method, as measured, with the
literature's numbers in rows of their own (ZINC250k, published; never mixed with ours).
"training molecules" is the share of changed results that are molecules of the training set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Published on ZINC250k (../shared/MOLECULES.md): task, δ, system → (improvement ± sd, success).
PUBLISHED = [
    ("plogp_constrained", 0.0, "JT-VAE", "1.91 ± 2.04", "97.5%"),
    ("plogp_constrained", 0.2, "JT-VAE", "1.68 ± 1.85", "97.1%"),
    ("plogp_constrained", 0.4, "JT-VAE", "0.84 ± 1.45", "83.6%"),
    ("plogp_constrained", 0.6, "JT-VAE", "0.21 ± 0.71", "46.4%"),
    ("plogp_constrained", 0.0, "GCPN", "4.20 ± 1.28", "100%"),
    ("plogp_constrained", 0.2, "GCPN", "4.12 ± 1.19", "100%"),
    ("plogp_constrained", 0.4, "GCPN", "2.49 ± 1.30", "100%"),
    ("plogp_constrained", 0.6, "GCPN", "0.79 ± 0.63", "100%"),
    ("qed_translation", 0.4, "JT-VAE", "", "8.8%"),
    ("qed_translation", 0.4, "GCPN", "", "9.4%"),
    ("qed_translation", 0.4, "Seq2Seq", "", "58.5%"),
    ("qed_translation", 0.4, "JTNN", "", "59.9%"),
    ("qed_translation", 0.4, "HierG2G", "", "76.9%"),
]

COLUMNS = ("task", "δ", "method", "starts", "success (RDKit)", "heads' success",
           "improvement", "similarity", "valid", "unique", "training molecules",
           "RDKit calls a start",
           "model calls a start", "wall s")  # fmt: skip


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * v:.1f}%"


def steering_table(experiments: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """A Markdown table of every row of every experiment's metrics (``name → label →
    metrics``, as the ``molecules_steer`` stages write them), then the published rows."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, rows in experiments.items():
        for label, m in rows.items():
            moved = [k for k in m if k.startswith("improvement_") and not k.endswith("_sd")]
            gains = [f"{k.removeprefix('improvement_')} {m[k]:+.2f} ± {m[k + '_sd']:.2f}"
                     for k in moved]  # fmt: skip
            method = m["method"] + ("" if m["in_loop_oracles"] != "none" else " (unguarded)")
            method += f" (first {m['n']})" if "_first" in label else ""
            sim = "" if m["similarity"] is None else f"{m['similarity']:.2f}"
            cells = [name, f"{m['similarity_threshold']:g}", method, str(m["n"]),
                     _pct(m["success_rate"]), _pct(m["predicted_success_rate"]),
                     "; ".join(gains), sim,
                     _pct(m["valid"]), _pct(m["unique"]), _pct(m.get("from_training")),
                     f"{m['oracle_calls']:.1f}",
                     f"{m['model_calls']:.0f}", f"{m['wall_s']:.0f}"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    for task, delta, system, gain, success in PUBLISHED:
        cells = [f"{task} (ZINC250k, published)", f"{delta:g}", system, "800" if gain else "",
                 success, "", f"plogp +{gain}" if gain else "", "", "", "", "", "", "",
                 ""]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
