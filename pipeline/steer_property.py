"""Stage `steer_property@<name>`: a digit experiment on a fitted property
(`property_experiments.<name>` of params.yaml), steered on models/properties/<property> and
graded by the learned certifier and, where the table came from a Morpho-MNIST measure, by
that exact measure too: reports/properties/<name>/<method>/ and its metrics.json.
"""

from __future__ import annotations

import sys

from latentsteer.stage import run_stage

MODELS = "models/properties"
OUT = "reports/properties"
# the closed loop's judge, the certifier it never sees, and the data (as pipeline/optimize.py)
SOURCES = {"judge": "models/judge", "certifier": "models/certifier", "data": "data/raw",
           "labels": "data/labels"}  # fmt: skip


def main(params: dict, name: str) -> None:
    # the domain's code that the run loads by name (its steering context, its property
    # support): imported here so the stage's declared deps cover it
    import latentsteer.domains.mnist.own_property  # noqa: F401
    import latentsteer.domains.mnist.steering_context  # noqa: F401
    from latentsteer.learned.steer_stage import steer_stage

    device = str((params.get("optimize") or {}).get("device", "auto"))
    steer_stage(params, "property_experiments", name, MODELS, f"{OUT}/{name}", "mnist",
                device=device, sources=SOURCES)  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python pipeline/steer_property.py EXPERIMENT")
    experiment = sys.argv[1]
    run_stage(f"steer_property@{experiment}", lambda params: main(params, experiment))
