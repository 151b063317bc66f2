"""Running a pipeline stage: read params, call the library, report errors as one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latentsteer.config import load_params
from latentsteer.errors import run_reporting


def run_stage(name: str, body: Callable[[dict[str, Any]], None]) -> None:
    """Run ``body(params)`` as stage ``name`` and exit with its code.

    Params come from ``params.yaml`` in the working directory, or ``$LATENTSTEER_PARAMS``.
    User errors print as ``<name>: error: <message>``; bugs keep their traceback (the rule is
    in :mod:`latentsteer.errors`). The folder of the file that defines ``body`` (``pipeline/``)
    counts as our code, so a ``ValueError`` its stage scripts raise is a user error too.
    """
    params_path = Path(os.environ.get("LATENTSTEER_PARAMS", "params.yaml"))
    code = getattr(body, "__code__", None)
    own_code = (Path(code.co_filename).parent,) if code is not None else ()
    sys.exit(run_reporting(name, lambda: body(load_params(params_path)), own_code))
