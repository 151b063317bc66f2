"""Where the heads' and the certifying oracles' success part: confident starts or the others.

Reads the pipeline's ``results/<experiment>/trajectory.npz`` (and the members of groups) and
splits each experiment's samples by their start, as ``grading.assess`` does: *confident*
when the guide judge and the certifier read the decoded start as the same digit, each with
p >= ``grading.CONFIDENT``. Prints, per experiment, the oracles' and the heads' success and
their gap over all starts and over the confident ones. Then, for the experiments that keep
the digit of prior draws, what happened on the starts the two judges read as different
digits: how often the guide judge still reads its digit at the end, and whether the
certifier ends up reading its own start digit or the guide judge's.

python scripts/gap_by_start.py [results] [--judge models/judge] [--certifier models/certifier]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from latentsteer.domains.mnist.judge import load_judge
from latentsteer.grading import CONFIDENT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", default="results")
    parser.add_argument("--judge", default="models/judge")
    parser.add_argument("--certifier", default="models/certifier")
    args = parser.parse_args()
    judge, certifier = load_judge(args.judge), load_judge(args.certifier)
    root = Path(args.results)
    found = sorted([*root.glob("*/trajectory.npz"), *root.glob("*/*/trajectory.npz")])
    print("| experiment | n | confident | oracle / heads, all (gap) "
          "| oracle / heads, confident (gap) |")  # fmt: skip
    print("|---|---|---|---|---|")
    ends = []
    for path in found:
        run = np.load(path)
        first = torch.as_tensor(run["images"][0])  # (n, 28, 28) the decoded starts
        last = torch.as_tensor(run["images"][-1])
        pj, pc = judge.probabilities(first), certifier.probabilities(first)  # (n, 10)
        same = pj.argmax(1) == pc.argmax(1)
        confident = (pj.max(1).values >= CONFIDENT) & (pc.max(1).values >= CONFIDENT) & same
        confident = confident.numpy()
        ok, heads = run["success"], run["predicted_success"]
        name = str(path.parent.relative_to(root))
        row = f"| {name} | {len(ok)} | {int(confident.sum())} | {_pair(ok, heads)} |"
        print(row + (f" {_pair(ok[confident], heads[confident])} |" if confident.any() else " – |"))
        if "thicken" in name and not ("unguarded" in name or "real" in name) and (~same).any():
            differ = ~same
            lj, lc = judge.probabilities(last).argmax(1), certifier.probabilities(last).argmax(1)
            ends.append((name, int(differ.sum()),
                         (lj == pj.argmax(1))[differ].float().mean().item(),
                         (lc == pc.argmax(1))[differ].float().mean().item(),
                         (lc == pj.argmax(1))[differ].float().mean().item()))  # fmt: skip
    if ends:
        print(
            "\n| experiment | starts the judges read differently | guide judge still reads its "
            "digit at the end | certifier ends on its own start digit | on the guide judge's |"
        )
        print("|---|---|---|---|---|")
        for name, k, a, b, c in ends:
            print(f"| {name} | {k} | {a:.1%} | {b:.1%} | {c:.1%} |")


def _pair(ok: np.ndarray, heads: np.ndarray) -> str:
    """``oracle / heads (gap in points)`` of per-sample success flags."""
    return f"{ok.mean():.1%} / {heads.mean():.1%} ({100 * (heads.mean() - ok.mean()):+.1f})"


if __name__ == "__main__":
    main()
