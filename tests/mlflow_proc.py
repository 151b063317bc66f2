"""A real MLflow server (``mlflow ui`` or ``mlflow server``) as a subprocess on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

MLFLOW = Path(sys.executable).parent / "mlflow"
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    # No background job runner (a pool of huey consumers): these tests need none of it.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    return env


def _stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM the server's process group (it spawns uvicorn), then SIGKILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        proc.poll()
        time.sleep(0.2)
    else:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@contextmanager
def mlflow_server(
    command: str, *args: str, cwd: Path, log: Path, timeout: float = 120.0
) -> Iterator[str]:
    """Run ``mlflow <command> --host 127.0.0.1 --port <free> <args>``; yield its base URL.

    Waits until ``/health`` answers 200 (at most ``timeout`` seconds) and always stops the
    server and its children on exit.
    """
    port = free_port()
    cmd = [str(MLFLOW), command, "--host", HOST, "--port", str(port), "--workers", "1", *args]
    url = f"http://{HOST}:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=server_env(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{cmd} exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{cmd} did not answer on {url} within {timeout:.0f} s:\n"
                    f"{log.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
