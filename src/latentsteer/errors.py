"""The project's exception types.

Everything a user can cause (bad input, bad params, a data source that cannot be reached)
raises one of these, or ``ValueError``, with a message that names the problem and what is
accepted. The CLI and the pipeline stages print that message on one line and exit non-zero.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable


class LatentsteerError(Exception):
    """Base class of errors the CLI and stages report as one line."""


class ConfigError(LatentsteerError, ValueError):
    """A bad value in ``params.yaml`` or a config dataclass: names the key and what is accepted."""


class DataSourceError(LatentsteerError):
    """A data source could not deliver verified data: says what was tried and what to do."""


def run_reporting(prefix: str, action: Callable[[], None]) -> int:
    """Run ``action`` and turn user-caused errors into one line on stderr.

    Returns:
        The exit code: 0 on success, 1 for :class:`LatentsteerError` or ``ValueError``
        (printed as ``<prefix>: error: <message>``), 130 for Ctrl-C. Set
        ``LATENTSTEER_DEBUG=1`` to print the traceback as well.
    """
    try:
        action()
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    except (LatentsteerError, ValueError) as exc:
        if os.environ.get("LATENTSTEER_DEBUG"):
            traceback.print_exc()
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return 1
    return 0
