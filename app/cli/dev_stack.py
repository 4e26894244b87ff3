"""What `palisade serve` starts beside the API when Tavus or the database are not given:
the Tavus simulator as a child process, the demo tenant, and the runtime file through
which the admin commands find the running stack."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import typer

from app.cli.base import NOT_IN_THE_IMAGE, fail
from app.domain.tenants.demo import demo_banner, demo_simulator_pal, seed_demo
from app.observability.logging import child_logging_config
from app.runtime import open_runtime
from app.settings import Settings

SIMULATOR_PACKAGE = "tavus_simulator"
SIMULATOR_DEFAULT_PORT = 8100
# In the data directory, in dev mode.
SIMULATOR_STATE_FILE = "simulator-state.json"
RUNTIME_FILE = "runtime.json"


@dataclass(frozen=True)
class RunningStack:
    """Where a dev-mode `palisade serve` serves, and what it started."""

    pid: int
    api_url: str
    database_url: str
    tavus_base_url: str | None


class RuntimeFile:
    """``runtime.json`` in the data directory: written by a dev-mode `palisade serve` once
    its database and simulator are up, removed when it stops. A file left by a process
    that died without removing it names a dead pid, and is ignored."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / RUNTIME_FILE

    def read(self) -> RunningStack | None:
        try:
            stack = RunningStack(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return stack if _alive(stack.pid) else None

    @contextmanager
    def kept(self, stack: RunningStack) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # It names the database: readable by its owner only, like the demo key beside it.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(asdict(stack), file)
        try:
            yield
        finally:
            # Only its own: a second serve on the same data directory may have replaced it.
            if self.read() == stack:
                self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def simulator_installed() -> bool:
    return importlib.util.find_spec(SIMULATOR_PACKAGE) is not None


@contextmanager
def simulator_process(settings: Settings, port: int) -> Iterator[str]:
    """The Tavus simulator as a child process, logging in this process's format; in dev
    mode it keeps its state in the data directory and holds the demo's PAL."""
    if not simulator_installed():
        raise fail(
            "TAVUS_API_KEY is unset and the Tavus simulator, which stands in for Tavus then, "
            f"is not installed ({NOT_IN_THE_IMAGE}): set TAVUS_API_KEY"
        )
    banner = (
        "TAVUS_API_KEY is unset: using the built-in Tavus SIMULATOR on "
        f"http://127.0.0.1:{port}; no real conversations will start"
    )
    typer.secho("!" * len(banner), fg=typer.colors.YELLOW, err=True)
    typer.secho(banner, fg=typer.colors.YELLOW, bold=True, err=True)
    typer.secho("!" * len(banner), fg=typer.colors.YELLOW, err=True)
    with tempfile.TemporaryDirectory(prefix="palisade-") as scratch:
        log_config = Path(scratch) / "simulator-logging.json"
        log_config.write_text(json.dumps(child_logging_config(settings)))
        command = [
            sys.executable,
            "-m",
            SIMULATOR_PACKAGE,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-config",
            str(log_config),
            "--log-level",
            settings.log_level.lower(),
        ]
        if settings.is_dev:
            command += [
                "--state-file",
                str((settings.data_dir / SIMULATOR_STATE_FILE).resolve()),
                "--pal",
                json.dumps(demo_simulator_pal()),
            ]
        process = subprocess.Popen(command)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def seed_demo_tenant(settings: Settings, database_url: str, simulator_url: str) -> str:
    """Create or refresh the demo tenant; the banner saying how to use it."""

    async def seed() -> str:
        async with open_runtime(settings, database_url) as runtime:
            await wait_for_simulator(runtime.http, simulator_url)
            demo = await seed_demo(runtime)
        return demo_banner(demo, settings.public_base_url)

    return asyncio.run(seed())


async def wait_for_simulator(http: httpx.AsyncClient, url: str, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            if (await http.get(f"{url}/_sim/healthz", timeout=1.0)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise fail(f"the Tavus simulator did not start on {url}")
        await asyncio.sleep(0.05)
