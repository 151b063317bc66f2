"""The project's exception types, and the rule that tells a user's mistake from a bug.

Everything a user can cause (bad input, bad params, a data source that cannot be reached)
raises one of these, or ``ValueError``, with a message that names the problem and what is
accepted. Library callers can catch ``ValueError`` for bad arguments (:class:`ConfigError` is
one too).

The rule :func:`run_reporting` applies for the CLI and every pipeline stage
(:func:`is_user_error`):

* **User errors** print as one line, ``<prefix>: error: <message>``, and exit 1:

  - any :class:`LatentsteerError` (:class:`ConfigError`, :class:`DataSourceError`, ...);
  - a ``ValueError`` raised by a ``raise`` statement in our own code: the innermost frame of
    its traceback is a ``raise`` line in the ``latentsteer`` package (or in the stage script
    that :func:`~latentsteer.stage.run_stage` runs). That is where input is validated.

* **Bugs** keep their traceback: every other exception. That includes a ``ValueError`` from
  inside numpy, torch, pandas or any other library (the innermost frame is theirs), one that
  Python raises on a line of ours that is not a ``raise`` (a tuple-unpacking mismatch,
  ``zip(strict=True)``, ``int("x")``), and any ``KeyError``, ``AssertionError`` or
  ``TypeError``. Such a ``ValueError`` gets a note saying why it is shown in full.

``LATENTSTEER_DEBUG=1`` prints the traceback of user errors too. Ctrl-C prints one line and
exits 130.
"""

from __future__ import annotations

import linecache
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path


class LatentsteerError(Exception):
    """Base class of errors the CLI and stages report as one line."""


class ConfigError(LatentsteerError, ValueError):
    """A bad value in ``params.yaml`` or a config dataclass: names the key and what is accepted."""


class DataSourceError(LatentsteerError):
    """A data source could not deliver verified data: says what was tried and what to do."""


PACKAGE_DIR = Path(__file__).resolve().parent
"""The ``latentsteer`` package: a ``ValueError`` raised by a ``raise`` line here is validation."""


def is_user_error(exc: BaseException, own_code: Iterable[Path] = ()) -> bool:
    """Whether ``exc`` is a user's mistake (reported as one line) rather than a bug.

    Args:
        exc: a raised exception, with its traceback.
        own_code: folders of our code besides the package (the pipeline's stage scripts).

    Returns:
        True for a :class:`LatentsteerError`, and for a ``ValueError`` whose innermost
        traceback frame is a ``raise`` statement in the package or in ``own_code``.
    """
    if isinstance(exc, LatentsteerError):
        return True
    if not isinstance(exc, ValueError) or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    try:
        path = Path(filename).resolve()
    except (OSError, RuntimeError):
        return False
    roots = (PACKAGE_DIR, *(Path(r).resolve() for r in own_code))
    if not any(path.is_relative_to(root) for root in roots):
        return False  # raised inside numpy, torch, pandas...: a bug of ours upstream of it
    # The raise statement's first line; Python's own errors (unpacking...) are on other lines.
    return linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise ")


def run_reporting(prefix: str, action: Callable[[], None], own_code: Iterable[Path] = ()) -> int:
    """Run ``action``; report user errors as one line on stderr, let bugs raise.

    Args:
        prefix: what the one-line message starts with (``latentsteer measure``, a stage).
        action: the work.
        own_code: folders of our code besides the package, for :func:`is_user_error`.

    Returns:
        The exit code: 0 on success, 1 for a user error (printed as
        ``<prefix>: error: <message>``), 130 for Ctrl-C. Any other exception propagates with
        its traceback (see the module's docstring for the rule).
    """
    try:
        action()
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    except Exception as exc:
        if not is_user_error(exc, own_code):
            if isinstance(exc, ValueError):
                exc.add_note(
                    f"{prefix}: this ValueError did not come from latentsteer's input checks, "
                    "so it is shown in full as a likely bug; please report it with this traceback"
                )
            raise
        if os.environ.get("LATENTSTEER_DEBUG"):
            traceback.print_exc()
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return 1
    return 0
