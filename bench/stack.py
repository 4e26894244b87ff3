"""The processes under test: the Tavus simulator and N ``palisade serve`` processes on one
database, each started as production would start it, plus the tenant the load uses."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.tenants.demo import DEMO_FACE_ID, DEMO_PROMPT, demo_profiles
from bench import rows
from bench.database import BenchDatabase, with_connection
from bench.monitor import ProcessMonitor
from tavus_simulator.faults import API_OPERATIONS, LatencyFault
from tests.support.processes import clean_env, free_port, palisade, running, wait_ready

T = TypeVar("T")

HOST = "127.0.0.1"
TENANT_ID = "bench"
# The demo tenant's profiles: one of each strategy.
PROFILE_NAMES = {"reuse": "coach", "ephemeral": "voices", "auto": "smart"}


@dataclass
class Stack:
    workdir: Path
    database: BenchDatabase
    simulator_url: str
    palisade_urls: list[str]
    # The environment every Palisade process shares; each adds its own PUBLIC_BASE_URL.
    env: dict[str, str]
    api_key: str = ""  # the benchmark tenant's
    persistent_pal_id: str = ""

    @property
    def tavus_api_key(self) -> str:
        return self.env["TAVUS_API_KEY"]

    def sql(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return with_connection(self.database.url, work)

    def retire_live_sessions(self) -> None:
        self.sql(rows.retire_live_sessions)


def palisade_env(database_url: str, simulator_url: str) -> dict[str, str]:
    return clean_env(
        {
            "PALISADE_MODE": "production",
            "DATABASE_URL": database_url,
            "TAVUS_API_KEY": secrets.token_urlsafe(24),
            "TAVUS_BASE_URL": simulator_url,
            "ADMIN_TOKEN": secrets.token_urlsafe(32),
            "SECRET_KEY": secrets.token_urlsafe(48),
            "PALISADE_METRICS_TOKEN": secrets.token_urlsafe(32),
            # No live session falls due for a status poll within a run, and the orphan
            # sweep (which lists every PAL and conversation) cannot land in a phase.
            "PALISADE_POLL_INTERVAL_SECONDS": "3600",
            "PALISADE_SWEEP_INTERVAL_SECONDS": "0",
        }
    )


def inject_latency(simulator_url: str, latency_ms: float) -> None:
    """A fixed latency fault on every Tavus operation (docs/simulator.md)."""
    if latency_ms <= 0:
        return
    rule = LatencyFault(ms=latency_ms).model_dump(mode="json", exclude_none=True)
    for operation in API_OPERATIONS:
        answer = httpx.put(
            f"{simulator_url}/_sim/faults/{operation}", json={"faults": [rule]}, timeout=10
        )
        answer.raise_for_status()


def _start_simulator(
    exits: ExitStack, workdir: Path, monitor: ProcessMonitor, latency_ms: float
) -> str:
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = workdir / "simulator.log"
    # The simulated clock runs at 1/100 of real time and the face joins after an hour of
    # it: no timer fires and no webhook is sent, so the only traffic is the measured one.
    command = palisade(
        "simulator", "--host", HOST, "--port", str(port),
        "--time-scale", "0.01", "--replica-join-delay", "3600",
    )  # fmt: skip
    process = exits.enter_context(running(command, clean_env(), workdir, log))
    wait_ready(f"{url}/_sim/healthz", process, log)
    monitor.watch("simulator", process.pid)
    inject_latency(url, latency_ms)
    return url


def _start_palisade(
    exits: ExitStack,
    workdir: Path,
    monitor: ProcessMonitor,
    env: dict[str, str],
    count: int,
    launcher: Callable[..., list[str]],
) -> list[str]:
    started: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    for number in range(1, count + 1):
        port = free_port()
        url = f"http://{HOST}:{port}"
        log = workdir / f"palisade-{number}.log"
        # The first process migrates the fresh database; the others refuse to start on a
        # schema that is behind, so they wait for it.
        command = launcher("serve", "--host", HOST, "--port", str(port))
        if number == 1:
            command.append("--migrate")
        process = exits.enter_context(
            running(command, {**env, "PUBLIC_BASE_URL": url}, workdir, log)
        )
        if number == 1:
            wait_ready(f"{url}/readyz", process, log)
        started.append((url, process, log))
        monitor.watch(f"palisade-{number}", process.pid)
    for url, process, log in started[1:]:
        wait_ready(f"{url}/readyz", process, log)
    return [url for url, _, _ in started]


def _set_up_tenant(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_TOKEN']}"}
    with httpx.Client(timeout=30) as http:
        pal = http.post(
            f"{stack.simulator_url}/v2/pals",
            headers={"x-api-key": stack.tavus_api_key},
            json={
                "pal_name": "Bench coach",
                "default_face_id": DEMO_FACE_ID,
                "system_prompt": DEMO_PROMPT,
            },
        )
        pal.raise_for_status()
        stack.persistent_pal_id = pal.json()["pal_id"]
        profiles = demo_profiles(stack.persistent_pal_id)
        tenant = http.post(
            f"{stack.palisade_urls[0]}/tenants",
            headers=admin,
            json={
                "id": TENANT_ID,
                "name": "Benchmark",
                # The cap is not under test; admission still counts against it.
                "max_concurrent_sessions": 100_000,
                "profiles": {name: profiles[name] for name in PROFILE_NAMES.values()},
            },
        )
        if tenant.status_code != 201:
            raise RuntimeError(f"tenant creation failed: {tenant.text}")
        key = http.post(
            f"{stack.palisade_urls[0]}/tenants/{TENANT_ID}/api-keys", headers=admin, json={}
        )
        key.raise_for_status()
        stack.api_key = key.json()["key"]


@contextmanager
def running_stack(
    database: BenchDatabase,
    *,
    processes: int,
    sim_latency_ms: float,
    workdir: Path,
    monitor: ProcessMonitor,
    launcher: Callable[..., list[str]] = palisade,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """Start everything, yield it with the tenant set up, stop everything (SIGINT).

    ``launcher`` makes the command line of a Palisade process from its arguments;
    ``extra_env`` adds to the environment the Palisade processes share."""
    with ExitStack() as exits:
        simulator_url = _start_simulator(exits, workdir, monitor, sim_latency_ms)
        env = {**palisade_env(database.url, simulator_url), **(extra_env or {})}
        urls = _start_palisade(exits, workdir, monitor, env, processes, launcher)
        stack = Stack(workdir, database, simulator_url, urls, env)
        _set_up_tenant(stack)
        yield stack
