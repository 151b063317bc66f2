"""MNIST's success tolerances, per Morpho-MNIST measure, in its own units.

A goal such as ``thickness=+2`` or ``slant=0.3`` is graded by measuring the decoded image;
these tolerances say what counts as "got it". One number for every property would be
wrong: ±0.5 px is a fair slack for a stroke's thickness, but ±0.5 rad of slant is about 29°.
The values are about the spread of a measure between near-identical drawings of one digit
(a one-pixel shift, a slightly heavier pen), so a sample within tolerance looks as asked.
"""

from __future__ import annotations

#: Morpho-MNIST measure → tolerance, in the measure's units (px, px², rad).
TOLERANCE: dict[str, float] = {
    "thickness": 0.5,  # px
    "width": 0.5,  # px
    "height": 0.5,  # px
    "length": 1.0,  # px of skeleton
    "area": 5.0,  # px² (a 0.5 px thicker 10 px stroke adds about 5 px²)
    "slant": 0.05,  # rad, about 3°
}
