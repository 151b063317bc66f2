"""Where the heads' and the certifying oracles' success part: confident starts or the others.

Prints, per experiment of the pipeline's ``results/`` (the members of groups too), the
oracles' and the heads' success and their gap over all starts and over the *confident* ones
(both judges read the decoded start as the same digit with p >= ``grading.CONFIDENT``), as
each ``metrics.json`` records them. Then, for the experiments that keep the digit of prior
draws, what happened on the starts the two judges read as different digits, from the
recorded images in ``trajectory.npz``: how often the guide judge still reads its digit at
the end, and whether the certifier ends up reading its own start digit or the guide judge's.

python scripts/gap_by_start.py [results] [--judge models/judge] [--certifier models/certifier]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from latentsteer.domains.mnist.judge import load_judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", default="results")
    parser.add_argument("--judge", default="models/judge")
    parser.add_argument("--certifier", default="models/certifier")
    args = parser.parse_args()
    root = Path(args.results)
    found = sorted([*root.glob("*/metrics.json"), *root.glob("*/*/metrics.json")])
    print("| experiment | n | confident | oracle / heads, all (gap) "
          "| oracle / heads, confident (gap) |")  # fmt: skip
    print("|---|---|---|---|---|")
    disputed = []
    for path in found:
        m = json.loads(path.read_text())
        if "success_rate_confident" not in m:
            continue  # graded by another domain, or before starts were split
        name = str(path.parent.relative_to(root))
        sure = m["n"] - m["ambiguous_starts"]
        every = _pair(m["success_rate"], m["predicted_success_rate"])
        confident = _pair(m["success_rate_confident"], m.get("predicted_success_rate_confident"))
        print(f"| {name} | {m['n']} | {sure} | {every} | {confident} |")
        if "thicken" in name and not ("unguarded" in name or "real" in name):
            disputed.append((name, path.parent / "trajectory.npz"))
    judge, certifier = load_judge(args.judge), load_judge(args.certifier)
    ends = [row for name, file in disputed if (row := _disputed(name, file, judge, certifier))]
    if ends:
        print(
            "\n| experiment | starts the judges read differently | guide judge still reads its "
            "digit at the end | certifier ends on its own start digit | on the guide judge's |"
        )
        print("|---|---|---|---|---|")
        for name, k, a, b, c in ends:
            print(f"| {name} | {k} | {a:.1%} | {b:.1%} | {c:.1%} |")


def _disputed(name: str, file: Path, judge, certifier) -> tuple | None:
    """What the two judges read at the end of the starts they read as different digits:
    ``(name, how many, guide judge keeps its digit, certifier on its own start digit,
    certifier on the guide judge's)``; ``None`` when they agree on every start."""
    with np.load(file) as run:
        first = torch.as_tensor(run["images"][0])  # (n, 28, 28) the decoded starts
        last = torch.as_tensor(run["images"][-1])
    j0, c0 = judge.probabilities(first).argmax(1), certifier.probabilities(first).argmax(1)
    differ = j0 != c0
    if not differ.any():
        return None
    j1, c1 = judge.probabilities(last).argmax(1), certifier.probabilities(last).argmax(1)
    share = lambda ok: ok[differ].float().mean().item()  # noqa: E731
    return name, int(differ.sum()), share(j1 == j0), share(c1 == c0), share(c1 == j0)


def _pair(oracle: float | None, heads: float | None) -> str:
    """``oracle / heads (gap in points)``; ``–`` where either is missing."""
    if oracle is None or heads is None or math.isnan(oracle) or math.isnan(heads):
        return "–"
    return f"{oracle:.1%} / {heads:.1%} ({100 * (heads - oracle):+.1f})"


if __name__ == "__main__":
    main()
