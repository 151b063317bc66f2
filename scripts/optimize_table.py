"""Print the numbers of docs/results/mnist.md as a table from the pipeline's results/*/metrics.json
(and results/<group>/*/metrics.json for the members of groups).

python scripts/optimize_table.py [results]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(value: object, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    print(
        "| experiment | method | n (ambiguous) | oracle success (confident starts) "
        "| heads' success | in-loop oracles' | measured Δ thickness (sd) "
        "| within tol | predicted − measured | realism ×start (matched) | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    found = [*root.glob("*/metrics.json"), *root.glob("*/*/metrics.json")]
    for folder in sorted((p.parent for p in found), key=lambda p: p.name):
        m = json.loads((folder / "metrics.json").read_text())
        change, sd = m.get("thickness_measured_change"), m.get("thickness_measured_change_sd")
        print(
            f"| {folder.name} | {m['method']} | {m['n']} ({m['ambiguous_starts']}) "
            f"| {fmt(m['success_rate'], '.3f')} ({fmt(m['success_rate_confident'], '.3f')}) "
            f"| {fmt(m['predicted_success_rate'], '.3f')} "
            f"| {fmt(m.get('guide_success_rate'), '.3f')} "
            f"| {fmt(change, '+.2f')} ({fmt(sd, '.2f')}) "
            f"| {fmt(m.get('thickness_within_tol'), '.3f')} "
            f"| {fmt(m.get('thickness_gap'), '+.2f')} "
            f"| {fmt(m['realism_ratio'])} ({fmt(m['realism_matched_ratio'])}) "
            f"| {m['wall_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
