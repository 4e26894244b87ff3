"""The processes a run owns: a PostgreSQL server it can restart, the Tavus simulator, and
the Palisade replicas it kills and starts again. Leaving the context stops them all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.db.embedded import EmbeddedPostgres
from tests.chaos.modes import Mode
from tests.chaos.plan import SIMULATOR_TIME_SCALE, simulator_seed
from tests.support import databases
from tests.support.cluster import PalisadeProcess, Proc, simulator_process
from tests.support.receiver import receiver_process

DATABASE = "palisade_chaos"

# A fast reconciler, as in the end-to-end tests: lost webhooks are caught by polls every
# half second and a dead process's starts are resumed 8 s after it took them. The Tavus
# timeout is short so hangs become timeouts; the lease must stay >= 3x that timeout.
REPLICA_ENV = {
    "PALISADE_RECONCILER_TICK_SECONDS": "0.1",
    "PALISADE_POLL_INTERVAL_SECONDS": "0.5",
    "PALISADE_RETRY_BACKOFF_SECONDS": "0.1",
    "PALISADE_START_LEASE_SECONDS": "8",
    "PALISADE_TAVUS_TIMEOUT_SECONDS": "2",
    "PALISADE_DEADLINE_GRACE_SECONDS": "5",
    "PALISADE_POOL_TICK_SECONDS": "0.5",
    # The sweep would hide leaks of the main paths: they are what the run checks.
    "PALISADE_SWEEP_INTERVAL_SECONDS": "0",
    # Three replicas' pools stay well under PostgreSQL's 100 connections.
    "PALISADE_DB_POOL_SIZE": "5",
    "PALISADE_DB_MAX_OVERFLOW": "5",
    "PALISADE_LOG_LEVEL": "warning",
    # Tenant webhooks: a dead replica's deliveries come back after 3x the timeout.
    "PALISADE_WEBHOOK_TIMEOUT_SECONDS": "2",
    "PALISADE_WEBHOOK_TICK_SECONDS": "0.2",
    "PALISADE_WEBHOOK_RETRY_SECONDS": "[0.2, 0.5, 1, 2, 2, 2, 2, 2, 2, 2]",
}


class Replica:
    """One `palisade serve` process, on the same port (and webhook URL) across restarts."""

    def __init__(self, index: int, process: PalisadeProcess) -> None:
        self.index = index
        self._process = process
        self._running: ExitStack | None = None
        self._proc: Proc | None = None

    @property
    def url(self) -> str:
        return self._process.url

    @property
    def up(self) -> bool:
        return self._proc is not None and self._proc.process.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        if self._proc is None:
            return "(not running)"
        return "\n".join(self._proc.log.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> None:
        running = ExitStack()
        self._proc = running.enter_context(self._process.run())
        self._running = running

    def kill(self) -> int:
        """SIGKILL: no shutdown hook runs, leases and half-done starts stay behind."""
        assert self._proc is not None
        pid = self._proc.process.pid
        self._proc.process.kill()
        self._proc.process.wait()
        self.stop()
        return pid

    def stop(self) -> None:
        """A graceful stop (SIGINT) if still running; see tests/support/processes.py."""
        running, self._running, self._proc = self._running, None, None
        if running is not None:
            running.close()


@dataclass
class Stack:
    workdir: Path
    postgres: EmbeddedPostgres
    database_url: str
    simulator_url: str
    replicas: list[Replica]
    # The tenants' webhook receiver (tests/support/receiver.py): answers 200.
    receiver_url: str

    def restart_database(self, outage_s: float) -> float:
        """Stop PostgreSQL (its clients' connections die), leave it down for
        ``outage_s`` and start it again; the seconds it was down in all."""
        stopped = time.monotonic()
        self.postgres.stop()
        # The outage itself: replicas meet refused connections all along.
        time.sleep(outage_s)
        self.postgres.start()
        return time.monotonic() - stopped


@contextmanager
def running_stack(workdir: Path, mode: Mode, seed: int) -> Iterator[Stack]:
    with ExitStack() as stack:
        # A short path: the server's Unix socket lives in its data directory.
        postgres = EmbeddedPostgres(workdir / "pg")
        postgres.start()
        stack.callback(postgres.stop)
        database_url = asyncio.run(
            databases.create_migrated_database(postgres.url("postgres"), DATABASE)
        )
        simulator = stack.enter_context(
            simulator_process(
                workdir,
                "--time-scale",
                str(SIMULATOR_TIME_SCALE),
                "--seed",
                str(simulator_seed(seed)),
            )
        )
        receiver = stack.enter_context(receiver_process(workdir))
        replicas = [
            Replica(index, PalisadeProcess(database_url, simulator.url, workdir, env=REPLICA_ENV))
            for index in range(mode.replicas)
        ]
        for replica in replicas:
            stack.callback(replica.stop)
        with ThreadPoolExecutor(len(replicas)) as pool:
            list(pool.map(Replica.start, replicas))
        yield Stack(workdir, postgres, database_url, simulator.url, replicas, receiver.url)
