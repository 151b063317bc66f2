"""The MNIST domain: 28×28 digits, Morpho-MNIST measures and digit judges as oracles.

The domain object is :data:`latentsteer.domains.mnist.domain.MNIST`. This file stays empty
so that a measuring worker importing :mod:`.morphometry` does not load torch.
"""
