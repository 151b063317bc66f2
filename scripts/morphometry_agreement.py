"""Agreement of `latentsteer.measure` with the official Morpho-MNIST release (test set).

    python scripts/morphometry_agreement.py ../shared/reference/original-t10k-morpho.csv

Prints a Markdown table: Pearson r, mean absolute difference and mean of each measure.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from latentsteer import MEASURES, measure, mnist


def main(reference_csv: str) -> None:
    official = pd.read_csv(reference_csv)
    images = np.rint(mnist("test")[0] * 255).astype(np.uint8)
    ours = measure(images)
    assert len(ours) == len(official)
    print(f"images: {len(ours)}\n")
    print("| measure | Pearson r | mean abs diff | mean (ours) | mean (official) |")
    print("|---|---|---|---|---|")
    for col in MEASURES:
        r = np.corrcoef(ours[col], official[col])[0, 1]
        mad = np.abs(ours[col] - official[col]).mean()
        print(
            f"| {col} | {r:.4f} | {mad:.4f} | {ours[col].mean():.3f} | {official[col].mean():.3f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference/original-t10k-morpho.csv")
