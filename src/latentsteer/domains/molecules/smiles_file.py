"""Reading a user's SMILES file: one molecule per line, found again by its line number.

A line holds a SMILES string, optionally followed by whitespace and a name (the common
``.smi`` layout); blank lines and lines starting with ``#`` are skipped but still counted, so
every message names the line a user sees in an editor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".smi", ".smiles")


@dataclass(frozen=True)
class SmilesFile:
    """The molecules of a file, in file order.

    Attributes:
        smiles: each molecule's SMILES as written.
        lines: the 1-based line number of each.
    """

    smiles: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.smiles)


def read_smiles_file(path: str | os.PathLike[str]) -> SmilesFile:
    """Read ``path``.

    Raises:
        ValueError: a missing or unreadable file, or one with no molecules (one line).
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p} is not a file")
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{p} is not a text file of SMILES (one molecule per line)") from None
    smiles, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            smiles.append(fields[0])
            lines.append(number)
    if not smiles:
        raise ValueError(f"{p} holds no molecules (expected one SMILES per line)")
    return SmilesFile(smiles, lines)


def describe_lines(numbers: list[int], limit: int = 5) -> str:
    """``"lines 3, 7 and 9"``; longer lists end with how many more."""
    shown = [str(n) for n in numbers[:limit]]
    more = len(numbers) - len(shown)
    if more:
        return f"lines {', '.join(shown)} and {more} more"
    if len(shown) == 1:
        return f"line {shown[0]}"
    return f"lines {', '.join(shown[:-1])} and {shown[-1]}"
