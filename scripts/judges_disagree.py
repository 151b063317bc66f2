"""How often the guide judge and the certifier name different digits for the same prior draw.

A ``digit=keep`` result is certified against the digit the certifier reads in the decoded
start, while the loop (which never sees the certifier) keeps the digit the guide judge reads
there. Where the two name different digits, no such loop can be certified, so their
disagreement on the starts bounds the oracle success of every ``digit=keep`` experiment on
prior draws. Prints, per seed, how many of ``n`` draws the two read as different digits and
how many are ambiguous (not both read as the same digit with p >= 0.9).

python scripts/judges_disagree.py [--n 256] [--seeds 0,2,5]
"""

from __future__ import annotations

import argparse

import torch

from latentsteer.domains.mnist.judge import load_judge
from latentsteer.grading import CONFIDENT
from latentsteer.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/vae_calibrated")
    parser.add_argument("--judge", default="models/judge")
    parser.add_argument("--certifier", default="models/certifier")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--seeds", default="0,2,5")
    args = parser.parse_args()
    model = load_model(args.model, "cpu")
    judge, certifier = load_judge(args.judge), load_judge(args.certifier)
    print("| seed | draws | judges name different digits | ambiguous (not both p >= 0.9, same) |")
    print("|---|---|---|---|")
    for seed in map(int, args.seeds.split(",")):
        with torch.no_grad():  # the starts exactly as `random:N` decodes them
            x = model.decode(model.sample_prior(args.n, seed=seed)).clamp(0, 1)
        pj, pc = judge.probabilities(x), certifier.probabilities(x)  # (n, 10) each
        differ = pj.argmax(1) != pc.argmax(1)
        sure = (pj.max(1).values >= CONFIDENT) & (pc.max(1).values >= CONFIDENT) & ~differ
        print(f"| {seed} | {args.n} | {int(differ.sum())} ({differ.float().mean():.1%}) "
              f"| {int((~sure).sum())} |")  # fmt: skip


if __name__ == "__main__":
    main()
