"""A one-line stamp for a results page: which code, when, and on what machine.

Speed and results depend on the commit and on the hardware (two CPUs of the same size can
differ threefold), so every page a report stage writes opens with
``commit <short sha>, <UTC date>, <CPU model>[, <GPU name>]``. Nothing here touches the
network, and nothing raises: a part that cannot be found reads ``unknown``.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

UNKNOWN = "unknown"


def stamp(root: str | os.PathLike[str] | None = None) -> str:
    """``commit <short sha>, <UTC date>, <CPU model>`` and, where torch sees CUDA, the GPU.

    Args:
        root: the git checkout to name the commit of (default: the working directory).

    Returns:
        One line, e.g. ``commit 1a2b3c4, 2026-12-05, AMD EPYC 7B13, NVIDIA H100``.
    """
    parts = [f"commit {_commit(root)}", _date(), _cpu()]
    gpu = _gpu()
    if gpu is not None:
        parts.append(gpu)
    return ", ".join(parts)


def _commit(root: str | os.PathLike[str] | None) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        return out.stdout.strip() or UNKNOWN
    except Exception:  # no git, not a checkout, a hung call: the stamp still gets written
        return UNKNOWN


def _date() -> str:
    try:
        return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    except Exception:
        return UNKNOWN


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("model name", "Processor", "cpu model") and value.strip():
                return " ".join(value.split())
    except Exception:  # not Linux, or unreadable
        pass
    try:
        return platform.processor() or platform.machine() or UNKNOWN
    except Exception:
        return UNKNOWN


def _gpu() -> str | None:
    """The first CUDA device's name, ``None`` without torch or CUDA."""
    try:
        import torch

        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:
        return None
    return None


def stamped_page(text: str, stage: str, root: str | os.PathLike[str] | None = None) -> str:
    """A Markdown page a report stage wrote, with the stamp under its title line.

    Args:
        text: the page; its first line is the title (``# ...``).
        stage: the DVC stage that writes it, named on the stamp line.
        root: as :func:`stamp`.
    """
    title, _, rest = text.partition("\n")
    line = (f"*Written by the `{stage}` stage from the pipeline's metrics ({stamp(root)}); "
            "`make repro` rewrites it. Do not edit by hand.*")  # fmt: skip
    return f"{title}\n\n{line}\n{rest}"
