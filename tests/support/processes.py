"""Real processes for end-to-end tests: started, probed over sockets, signalled, reaped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.wait import until_sync

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment minus every Palisade variable, plus ``extra``."""
    palisade_vars = {
        "DATABASE_URL",
        "TAVUS_API_KEY",
        "TAVUS_BASE_URL",
        "PUBLIC_BASE_URL",
        "ADMIN_TOKEN",
        "SECRET_KEY",
        "TEST_DATABASE_URL",
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in palisade_vars and not k.startswith("PALISADE_")
    }
    env.update(extra or {})
    return env


def palisade(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


@contextmanager
def running(
    command: list[str], env: Mapping[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, within: float = 60) -> None:
    def probe() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"process exited early:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    until_sync(probe, within=within, message=f"{url} ready")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not running: its parent (or init) just has not reaped it yet.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return status != "Z"
