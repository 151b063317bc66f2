"""Readouts: how steering turns a code into the heads' predictions.

* ``code`` — the heads read ``z`` itself (:meth:`MultiHeadVAE.predict`). Cheap, but away
  from the training codes the heads extrapolate, and a prior draw's decoded digit is often
  not the class the head reads at its code.
* ``cycle`` — the heads read ``E(D(z))``, the encoder's code of the decoded image. The heads
  were trained on encoder codes, so this asks the model what the *drawn* image is; the
  gradient then has to change the picture, not just the code, to change a prediction. It
  costs one decode and one encode per step.
* ``mixed`` — class heads read ``E(D(z))``, regression heads read ``z``. Measured on 256
  prior draws of the default model: the digit head agrees with the judge on 81% of the
  draws the judge reads confidently at ``z`` and on 87% at ``E(D(z))``, while the thickness
  head tracks the measured thickness better at ``z`` (mean error 0.31 px) than at
  ``E(D(z))`` (0.55 px, biased thin: decoded digits are blurrier than real ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from latentsteer.model import MultiHeadVAE

Predictions = dict[str, torch.Tensor]  # head name -> (n, k) probabilities or (n,) values
Readout = Callable[[torch.Tensor], Predictions]  # z (n, d) -> predictions
READOUTS = ("code", "cycle", "mixed")


def readout(model: MultiHeadVAE, kind: Literal["code", "cycle", "mixed"] = "code") -> Readout:
    """The function ``z (n, d) -> predictions`` of the named readout.

    Raises:
        ValueError: an unknown readout name.
    """
    if kind == "code":
        return model.predict
    if kind == "cycle":
        return lambda z: model.predict(cycle_code(model, z))
    if kind == "mixed":
        classes = {h.name for h in model.config.heads if h.kind == "class"}

        def mixed(z: torch.Tensor) -> Predictions:
            at_code, at_image = model.predict(z), model.predict(cycle_code(model, z))
            return {k: at_image[k] if k in classes else v for k, v in at_code.items()}

        return mixed
    raise ValueError(f"unknown readout {kind!r}; accepted: {', '.join(READOUTS)}")


def cycle_code(model: MultiHeadVAE, z: torch.Tensor) -> torch.Tensor:
    """``(n, d)`` the encoder's code (posterior mean) of the sample ``z`` decodes to.

    The domain turns the decoder's logits into that sample (``Domain.to_samples``,
    differentiable; MNIST: the sigmoid of each pixel's logit), so the gradient runs through it.
    """
    mu, _ = model.posterior(model.domain.to_samples(model.decode_logits(z)))
    return mu
