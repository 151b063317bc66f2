"""What the MNIST domain serves for properties fitted from a user's table
(``MnistDomain.property_support``): an ``.npz`` of images read and checked
(:mod:`.property_table`), every image encoded, and two CNN regressors as the learned oracle
with an applicability domain in the certifier's features (:mod:`.property_oracle`)."""

import torch

from latentsteer.domains.mnist.property_oracle import (
    fit_image_oracle as fit_property_oracle,
)
from latentsteer.domains.mnist.property_oracle import (
    load_image_oracle as load_property_oracle,
)
from latentsteer.domains.mnist.property_table import (
    read_image_table as read_property_table,
)
from latentsteer.domains.mnist.property_table import table_codes
from latentsteer.model import MultiHeadVAE

__all__ = [
    "decoded_samples",
    "fit_property_oracle",
    "load_property_oracle",
    "read_property_table",
    "table_codes",
]


def decoded_samples(model: MultiHeadVAE, z: torch.Tensor) -> torch.Tensor:
    """What the learned oracle reads of codes ``z (n, d)``: the decoded images."""
    return model.decode(z)
