"""The SELFIES alphabet of a molecule model: tokens ↔ indices, padded to a fixed length.

SELFIES (Krenn et al. 2020) is a string form in which every sequence of tokens decodes to a
valid molecule, so a decoder that emits tokens never draws an invalid one. A model's
vocabulary is the set of tokens of its training molecules plus a padding token, and its
length the longest training molecule (in tokens). Both are saved as JSON in the model
folder (the ``vocabulary`` entry of ``config.json``), so a folder decodes exactly as it was
trained.

A molecule with a token outside the vocabulary, or longer than the model's length, cannot be
encoded: :meth:`Vocabulary.encode` says which, in one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

PAD = "[nop]"  # SELFIES's own no-operation token: decoders skip it


@dataclass(frozen=True)
class Vocabulary:
    """Tokens (``tokens[0]`` is :data:`PAD`) and the padded sequence length."""

    tokens: tuple[str, ...]
    length: int

    def __post_init__(self) -> None:
        if not self.tokens or self.tokens[0] != PAD:
            raise ValueError(f"a vocabulary starts with the padding token {PAD}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        if self.length < 1:
            raise ValueError(f"vocabulary length must be positive; got {self.length}")

    @classmethod
    def fit(cls, selfies: Iterable[str], margin: int = 0) -> Vocabulary:
        """The vocabulary of training molecules: their tokens, sorted, and their longest
        length plus ``margin``."""
        import selfies as sf

        seen: set[str] = set()
        longest = 0
        for s in selfies:
            parts = list(sf.split_selfies(s))
            seen.update(parts)
            longest = max(longest, len(parts))
        seen.discard(PAD)
        return cls((PAD, *sorted(seen)), longest + margin)

    @property
    def size(self) -> int:
        return len(self.tokens)

    def encode(self, selfies: Sequence[str], names: Sequence[str] | None = None) -> np.ndarray:
        """``(n, length)`` int64 token indices, padded with 0.

        Args:
            names: what messages call each molecule (e.g. ``"line 3"``); by default
                ``"molecule i"`` (0-based).

        Raises:
            ValueError: a token outside the vocabulary or a molecule too long, naming the
                molecule and the problem.
        """
        import selfies as sf

        index = {t: i for i, t in enumerate(self.tokens)}

        def name(row: int) -> str:
            return names[row] if names is not None else f"molecule {row}"

        out = np.zeros((len(selfies), self.length), dtype=np.int64)
        for row, s in enumerate(selfies):
            parts = list(sf.split_selfies(s))
            if len(parts) > self.length:
                raise ValueError(
                    f"{name(row)}: {len(parts)} tokens, longer than the model's {self.length}"
                )
            unknown = sorted({p for p in parts if p not in index})
            if unknown:
                raise ValueError(
                    f"{name(row)}: token(s) {', '.join(unknown)} outside the model's "
                    f"vocabulary ({', '.join(self.tokens[1:])})"
                )
            out[row, : len(parts)] = [index[p] for p in parts]
        return out

    def fits(self, selfies: Iterable[str]) -> np.ndarray:
        """``(n,)`` bool: which molecules this vocabulary can encode (an empty string
        cannot)."""
        import selfies as sf

        known = set(self.tokens)
        out = []
        for s in selfies:
            parts = list(sf.split_selfies(s)) if s else []
            out.append(0 < len(parts) <= self.length and known.issuperset(parts))
        return np.array(out, dtype=bool)

    def decode(self, indices: np.ndarray) -> list[str]:
        """SELFIES strings of ``(n, length)`` token indices (padding dropped)."""
        return ["".join(self.tokens[i] for i in row if i != 0) for row in np.asarray(indices)]

    def to_json(self) -> dict[str, object]:
        """The entry a model folder's ``config.json`` keeps (``vocabulary``)."""
        return {"tokens": list(self.tokens), "length": self.length}

    @classmethod
    def from_json(cls, data: object) -> Vocabulary:
        """The inverse of :meth:`to_json`.

        Raises:
            ValueError: a missing or malformed entry (one line).
        """
        if data is None:
            raise ValueError("config.json has no vocabulary entry: not a molecule model folder")
        try:
            tokens, length = data["tokens"], data["length"]  # type: ignore[index]
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise TypeError("tokens must be a list of strings")
            if isinstance(length, bool) or not isinstance(length, int):
                raise TypeError("length must be an integer")
            return cls(tuple(tokens), length)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"config.json has a malformed vocabulary entry ({exc})") from None
