"""Latency that Palisade adds to ``POST /sessions`` over the Tavus calls themselves.

Starts, as separate processes on loopback: the Tavus simulator (no injected latency),
one ``palisade serve`` worker in production mode on a fresh PostgreSQL database, and a
load-generator process. The load generator runs the same closed-loop clients (each on
its own keep-alive connection) against two targets:

- baseline (A): the simulator directly, doing exactly the Tavus calls a start makes,
  with the bodies Palisade sends (reuse: ``POST /v2/conversations``; ephemeral:
  ``POST /v2/pals`` then ``POST /v2/conversations``);
- Palisade (B): ``POST /sessions`` for a reuse profile and for an ephemeral profile.

Phases are warmed up, then run in ABBA order per profile so that slow drift cancels,
with ``--concurrency`` clients and then with one. Added latency is Palisade's percentile
minus the baseline's same percentile. Each phase also records the CPU time of every
process involved, read from ``/proc``. Afterwards two short-lived Palisade processes
count the database round trips of one start (``app/db/instrumentation.py``), one for
each profile. Everything is bounded in requests and in time, and stops by itself.

    .venv/bin/python bench/session_latency.py
    .venv/bin/python bench/session_latency.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres

With ``--database-url`` a database ``bench_<hex>`` is created on that server and dropped
at the end; without it an embedded PostgreSQL runs in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import re
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.embedded import EmbeddedPostgres
from app.db.instrumentation import ENV_VAR as COUNT_ENV_VAR
from app.domain.tenants.demo import DEMO_FACE_ID, DEMO_PROMPT, demo_profiles
from app.settings import normalise_database_url

HOST = "127.0.0.1"
TENANT_ID = "bench"
# Its own simulator account, so nothing in Palisade's account is not Palisade's.
BASELINE_TAVUS_KEY = "bench-baseline-account"
ID = "@ID@"
PAL_ID = "@PAL_ID@"
PROFILES = ("reuse", "ephemeral")
PROFILE_NAMES = {"reuse": "coach", "ephemeral": "voices"}
PALISADE_ENV_PREFIXES = ("PALISADE_",)
PALISADE_ENV_NAMES = frozenset(
    {
        "DATABASE_URL",
        "TAVUS_API_KEY",
        "TAVUS_BASE_URL",
        "PUBLIC_BASE_URL",
        "ADMIN_TOKEN",
        "SECRET_KEY",
        "TEST_DATABASE_URL",
    }
)


def report(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --- load generator (runs in its own process) -----------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: str  # extra header lines, each ending in CRLF; may hold @ID@
    body: str  # JSON text; may hold @ID@ and @PAL_ID@
    takes_pal_id: bool = False  # read pal_id from this call's answer for the next call


@dataclass(frozen=True)
class PhaseSpec:
    label: str
    port: int
    calls: tuple[Call, ...]
    requests: int
    concurrency: int
    max_seconds: float


@dataclass
class PhaseResult:
    label: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0


class HttpConnection:
    """A bare HTTP/1.1 keep-alive client: a few microseconds of CPU per request, so the
    load generator takes as little as possible of the CPU it shares with what it
    measures (``httpx.AsyncClient`` costs close to a millisecond per request)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.host_line = f"Host: {HOST}:{port}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        head = (
            f"{method} {path} HTTP/1.1\r\n{self.host_line}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        lower = raw.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            payload = await self.reader.readexactly(int(lower[at + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            payload = await self._chunked()
        else:
            payload = b""
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status, payload

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(chunk[:-2])


async def run_phase(spec: PhaseSpec) -> PhaseResult:
    result = PhaseResult(spec.label)
    connections = [HttpConnection(spec.port) for _ in range(spec.concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    issued = 0
    first = spec.calls[0]
    started = time.perf_counter()
    stop_at = started + spec.max_seconds

    async def client(connection: HttpConnection) -> None:
        nonlocal issued
        while issued < spec.requests and time.perf_counter() < stop_at:
            issued += 1
            tag = str(uuid.uuid4())
            body = first.body.replace(ID, tag).encode()
            headers = first.headers.replace(ID, tag)
            begun = time.perf_counter()
            try:
                status, payload = await connection.request(first.method, first.path, headers, body)
                for previous, call in zip(spec.calls, spec.calls[1:], strict=False):
                    if status >= 300:
                        break
                    pal_id = json.loads(payload)["pal_id"] if previous.takes_pal_id else ""
                    status, payload = await connection.request(
                        call.method,
                        call.path,
                        call.headers.replace(ID, tag),
                        call.body.replace(ID, tag).replace(PAL_ID, pal_id).encode(),
                    )
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                # A cut connection is an error of that request; the next one reconnects.
                status, payload = 599, repr(exc).encode()
                await connection.close()
            elapsed_ms = (time.perf_counter() - begun) * 1000.0
            if status >= 300:
                result.errors += 1
                if result.first_error is None:
                    result.first_error = f"{status} {payload[:300]!r}"
            else:
                result.latencies_ms.append(elapsed_ms)

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        result.elapsed_s = time.perf_counter() - started
        await asyncio.gather(*(c.close() for c in connections))
    return result


def _loader_main(pipe: Connection) -> None:
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    while True:
        spec = pipe.recv()
        if spec is None:
            return
        try:
            pipe.send(runner(run_phase(spec)))
        except Exception as exc:  # reported by the parent rather than lost with the process
            pipe.send(PhaseResult(spec.label, errors=1, first_error=f"load generator: {exc!r}"))


class Loader:
    """The load-generator process, driven one phase at a time."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=_loader_main, args=(child,), daemon=True)
        self.process.start()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def run(self, spec: PhaseSpec) -> PhaseResult:
        self.pipe.send(spec)
        if not self.pipe.poll(spec.max_seconds + 60):
            raise RuntimeError(f"phase {spec.label} did not finish")
        result: PhaseResult = self.pipe.recv()
        return result

    def stop(self) -> None:
        if self.process.is_alive():
            self.pipe.send(None)
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


# --- processes, database, machine ------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PALISADE_ENV_NAMES and not k.startswith(PALISADE_ENV_PREFIXES)
    }
    env.update(extra)
    return env


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> Iterator[int]:
    """Run ``command`` with its output in ``log``; ``cwd`` is a scratch directory so that
    a ``.env`` in the checkout cannot reach the process."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process.pid
        except BaseException:
            sys.stderr.write(f"--- {log.name} (last lines) ---\n{log.read_text()[-6000:]}\n")
            raise
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_ready(url: str, log: Path, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready; log:\n{log.read_text()[-3000:]}")


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime are fields 14-17 of /proc/<pid>/stat (1-based).
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def server_cpu_seconds(postmaster: int) -> float:
    """The PostgreSQL server's CPU: postmaster, live children, and reaped children."""
    total = cpu_seconds(postmaster, with_children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if parent_pid(int(entry.name)) == postmaster:
                total += cpu_seconds(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
    return total


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "nproc": str(os.cpu_count()),
        "model": model,
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _sql(url: str, *statements: str) -> list[Any]:
    engine = create_async_engine(normalise_database_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            answers = []
            for statement in statements:
                result = await conn.execute(text(statement))
                answers.append(result.scalar() if result.returns_rows else None)
            return answers
    finally:
        await engine.dispose()


def sql(url: str, *statements: str) -> list[Any]:
    return asyncio.run(_sql(url, *statements))


@dataclass
class Database:
    admin_url: str  # a database of the server to run admin statements from
    url: str  # the benchmark's database
    name: str
    version: str
    postmaster_pid: int | None


@contextmanager
def database(server_url: str | None, workdir: Path) -> Iterator[Database]:
    name = f"bench_{secrets.token_hex(4)}"
    with ExitStack() as stack:
        if server_url is None:
            embedded = EmbeddedPostgres(workdir / "pgdata")
            embedded.start()
            stack.callback(embedded.stop)
            server_url = embedded.url("postgres")
        # The checkpointer lives as long as the server and is the postmaster's child.
        checkpointer, version = sql(
            server_url,
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
            "SHOW server_version",
        )
        postmaster: int | None = None
        # A server not on this machine's /proc gives no CPU figures.
        with suppress(OSError):
            postmaster = parent_pid(int(checkpointer))
        sql(server_url, f'CREATE DATABASE "{name}"')
        stack.callback(sql, server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        yield Database(server_url, with_database(server_url, name), name, str(version), postmaster)


def sessions_opened(db: Database) -> int:
    """Connections ever opened to the benchmark's database (the server's own count)."""
    statement = (
        f"SELECT coalesce((SELECT sessions FROM pg_stat_database WHERE datname = '{db.name}'), 0)"
    )
    return int(sql(db.admin_url, statement)[0])


# --- Palisade set-up -------------------------------------------------------------------


@dataclass
class Stack:
    workdir: Path
    simulator_url: str
    palisade_url: str
    env: dict[str, str]
    idempotency_key: bool = True
    api_key: str = ""
    # The Tavus bodies of one start of each profile, as Palisade sent them.
    tavus_calls: dict[str, tuple[Call, ...]] = field(default_factory=dict)


def palisade_command(port: int, *, migrate: bool) -> list[str]:
    command = [sys.executable, "-m", "app", "serve", "--host", HOST, "--port", str(port)]
    return [*command, "--migrate"] if migrate else command


def set_up_tenant(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_TOKEN']}"}
    tavus = {"x-api-key": stack.env["TAVUS_API_KEY"]}
    with httpx.Client(timeout=30) as http:
        pal = http.post(
            f"{stack.simulator_url}/v2/pals",
            headers=tavus,
            json={
                "pal_name": "Bench coach",
                "default_face_id": DEMO_FACE_ID,
                "system_prompt": DEMO_PROMPT,
            },
        )
        pal.raise_for_status()
        profiles = demo_profiles(pal.json()["pal_id"])
        tenant = http.post(
            f"{stack.palisade_url}/tenants",
            headers=admin,
            json={
                "id": TENANT_ID,
                "name": "Benchmark",
                "max_concurrent_sessions": 100_000,
                "profiles": {name: profiles[name] for name in PROFILE_NAMES.values()},
            },
        )
        if tenant.status_code != 201:
            raise RuntimeError(f"tenant creation failed: {tenant.text}")
        key = http.post(
            f"{stack.palisade_url}/tenants/{TENANT_ID}/api-keys", headers=admin, json={}
        )
        key.raise_for_status()
        stack.api_key = key.json()["key"]


def session_body(profile: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "profile": PROFILE_NAMES[profile],
        "external_ref": f"user-{ID}",
        "conversational_context": "The user is Ana; this is her first session.",
    }
    if profile == "ephemeral":
        body["overrides"] = {"layers": {"tts": {"external_voice_id": "voice-bright"}}}
    return body


def session_headers(stack: Stack, tag: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    if stack.idempotency_key:
        headers["Idempotency-Key"] = f"bench-{tag}"
    return headers


def palisade_call(stack: Stack, profile: str) -> tuple[Call, ...]:
    headers = session_headers(stack, ID)
    del headers["Content-Type"]  # the load generator sends it on every request
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (Call("POST", "/sessions", lines, json.dumps(session_body(profile))),)


def capture_tavus_calls(stack: Stack) -> None:
    """Start one session of each profile through Palisade and keep, as templates, the
    exact bodies Palisade sent to Tavus, with the session's id made a placeholder."""
    with httpx.Client(timeout=30) as http:
        for profile in PROFILES:
            call = palisade_call(stack, profile)[0]
            tag = str(uuid.uuid4())
            answer = http.post(
                f"{stack.palisade_url}/sessions",
                headers=session_headers(stack, tag),
                content=call.body.replace(ID, tag),
            )
            if answer.status_code != 201:
                raise RuntimeError(f"{profile} start failed: {answer.text}")
            session = answer.json()
            state = http.get(f"{stack.simulator_url}/_sim/state").json()
            conversation = next(
                c
                for c in state["conversations"]
                if c["conversation_id"] == session["conversation_id"]
            )
            template = _placeholders(conversation["request"], session["id"])
            headers = f"x-api-key: {BASELINE_TAVUS_KEY}\r\n"
            calls: list[Call] = []
            pal = next(p for p in state["pals"] if p["pal_id"] == session["pal_id"])
            pal_body = _placeholders(pal["request"], session["id"])
            if profile == "ephemeral":
                calls.append(Call("POST", "/v2/pals", headers, json.dumps(pal_body), True))
                template["pal_id"] = PAL_ID
            else:
                # The baseline account's own copy of the persistent PAL.
                persistent = http.post(
                    f"{stack.simulator_url}/v2/pals",
                    headers={"x-api-key": BASELINE_TAVUS_KEY},
                    json=pal_body,
                )
                persistent.raise_for_status()
                template["pal_id"] = persistent.json()["pal_id"]
            calls.append(Call("POST", "/v2/conversations", headers, json.dumps(template)))
            stack.tavus_calls[profile] = tuple(calls)


def _placeholders(body: Any, session_id: str) -> Any:
    # Same sizes as Palisade's bodies, but a tag no Palisade sweep would claim.
    raw = json.dumps(body).replace(session_id, ID).replace("(palisade ", "(baseline ")
    return json.loads(raw)


# --- round trips -------------------------------------------------------------------------

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)
_WHERE_COLUMNS = re.compile(r"\b\w+\.(\w+)\s*(?:=|IS|<|>|IN)", re.IGNORECASE)
_SET_COLUMNS = re.compile(r"\bSET\s+(.*?)\s+WHERE\b", re.IGNORECASE)
_LOCKING = re.compile(r"FOR (?:NO KEY UPDATE|UPDATE|KEY SHARE|SHARE)(?: NOWAIT| SKIP LOCKED)?")


def statement_label(sql_text: str) -> str:
    """A short name for a statement: verb, table, and what it keys on."""
    if sql_text in ("PING", "BEGIN", "COMMIT", "ROLLBACK"):
        return {"PING": "pool pre-ping (BEGIN; `;`; ROLLBACK)"}.get(sql_text, sql_text)
    verb = sql_text.split(None, 1)[0].upper()
    table_match = _TABLE.search(sql_text)
    table = table_match.group(1) if table_match else "?"
    label = f"{verb} {table}"
    upper = sql_text.upper()
    if verb == "UPDATE":
        set_clause = _SET_COLUMNS.search(sql_text)
        if set_clause:
            columns = re.findall(r"(\w+)\s*=", set_clause.group(1))
            label += f" SET {', '.join(columns)}"
    if verb == "SELECT" and "COUNT(" in upper:
        label = f"SELECT count(*) {table}"
    where = upper.find(" WHERE ")
    if where >= 0 and verb != "INSERT":
        keys = list(dict.fromkeys(_WHERE_COLUMNS.findall(sql_text[where:])))
        if keys:
            label += f" by {', '.join(keys)}"
    if "ON CONFLICT" in upper:
        label += " ON CONFLICT DO " + ("NOTHING" if "DO NOTHING" in upper else "UPDATE")
    lock = _LOCKING.search(upper)
    if lock:
        label += f" {lock.group(0)}"
    return label


@dataclass
class RoundTrips:
    profile: str
    starts: int
    per_start: dict[str, int]  # ping/begin/statement/commit/rollback
    round_trips: int
    ping_round_trips: int
    statements: list[tuple[str, int]]  # label, per start, in the order of one start
    sequence: list[str]  # one start, in order
    extra: dict[str, int]  # counted once or now and then, not per start


def count_round_trips(stack: Stack, profile: str, starts: int) -> RoundTrips:
    """Run ``starts`` starts one after another on a Palisade process that counts."""
    out = stack.workdir / f"round-trips-{profile}.json"
    port = free_port()
    env = {
        **stack.env,
        COUNT_ENV_VAR: str(out),
        # Only the starts are counted: the reconciler's own ticks would add to them.
        "PALISADE_RECONCILER": "false",
        "PUBLIC_BASE_URL": f"http://{HOST}:{port}",
    }
    log = stack.workdir / f"palisade-count-{profile}.log"
    call = palisade_call(stack, profile)[0]
    with running(palisade_command(port, migrate=False), env, log, stack.workdir):
        wait_ready(f"http://{HOST}:{port}/healthz", log)
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30) as http:
            for _ in range(starts):
                tag = str(uuid.uuid4())
                answer = http.post(
                    "/sessions",
                    headers=session_headers(stack, tag),
                    content=call.body.replace(ID, tag),
                )
                if answer.status_code != 201:
                    raise RuntimeError(f"{profile} start failed: {answer.text}")
    totals = json.loads(out.read_text())
    kinds = ("ping", "begin", "statement", "commit", "rollback")
    per_start = {k: round(totals[k] / starts) for k in kinds}
    extra = {k: totals[k] - per_start[k] * starts for k in kinds}
    extra["new connections"] = totals["connects"]
    per_statement = {s: round(n / starts) for s, n in totals["statements"].items()}
    for s, n in totals["statements"].items():
        if n - per_statement[s] * starts:
            extra[statement_label(s)] = n - per_statement[s] * starts
    per_start_round_trips = (
        per_start["begin"]
        + per_start["statement"]
        + per_start["commit"]
        + per_start["rollback"]
        + per_start["ping"] * totals["ping_round_trips"]
    )
    sequence = _one_start(totals["sequence"], per_start, per_statement)
    order = [s for s in dict.fromkeys(sequence) if s in per_statement]
    order += [s for s in per_statement if s not in order and per_statement[s]]
    return RoundTrips(
        profile=profile,
        starts=starts,
        per_start=per_start,
        round_trips=per_start_round_trips,
        ping_round_trips=totals["ping_round_trips"],
        statements=[(statement_label(s), per_statement[s]) for s in order if per_statement[s]],
        sequence=[statement_label(s) for s in sequence],
        extra={k: v for k, v in extra.items() if v},
    )


def _one_start(
    sequence: list[str], per_start: dict[str, int], per_statement: dict[str, int]
) -> list[str]:
    """The events of one whole start, in order: the last window of the recorded sequence
    whose contents are exactly one start's (a once-a-minute write may sit in another)."""
    expected = Counter({s: n for s, n in per_statement.items() if n})
    for kind in ("ping", "begin", "commit", "rollback"):
        if per_start[kind]:
            expected[kind.upper()] = per_start[kind]
    length = sum(expected.values())
    for end in range(len(sequence), length - 1, -1):
        window = sequence[end - length : end]
        if Counter(window) == expected and window[0] == "PING":
            return window
    return []


async def _admission_count_cost(url: str) -> tuple[int, float]:
    # The statement admission runs while it holds the tenant's row lock.
    count = (
        "SELECT count(*) FROM session "
        f"WHERE session.tenant_id = '{TENANT_ID}' AND state NOT IN ('ended', 'failed')"
    )
    engine = create_async_engine(normalise_database_url(url))
    try:
        async with engine.connect() as conn:
            live = int((await conn.execute(text(count))).scalar_one())
            timings = []
            for _ in range(7):
                explain = text(f"EXPLAIN (ANALYZE, FORMAT JSON) {count}")
                plan: list[dict[str, Any]] = (await conn.execute(explain)).scalar_one()
                timings.append(float(plan[0]["Execution Time"]))
            return live, statistics.median(timings)
    finally:
        await engine.dispose()


def admission_count_cost(url: str) -> tuple[int, float]:
    """The tenant's live sessions at the end of the run, and what counting them costs
    the server (median execution time, ms)."""
    return asyncio.run(_admission_count_cost(url))


# --- statistics and report --------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49], q[94], q[98]


@dataclass
class Measured:
    label: str
    profile: str
    target: str  # "tavus" or "palisade"
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0
    rounds_p50: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    def add(self, result: PhaseResult, cpu: dict[str, float]) -> None:
        self.latencies_ms += result.latencies_ms
        self.errors += result.errors
        self.first_error = self.first_error or result.first_error
        self.elapsed_s += result.elapsed_s
        if result.latencies_ms:
            self.rounds_p50.append(statistics.median(result.latencies_ms))
        for name, seconds in cpu.items():
            self.cpu_s[name] = self.cpu_s.get(name, 0.0) + seconds


class CpuMeter:
    def __init__(self, pids: dict[str, int], postmaster: int | None) -> None:
        self.pids = pids
        self.postmaster = postmaster

    def sample(self) -> dict[str, float]:
        sample = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        if self.postmaster is not None:
            sample["postgres"] = server_cpu_seconds(self.postmaster)
        sample["machine"] = machine_busy_seconds()
        return sample


def machine_busy_seconds() -> float:
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def ms(value: float) -> str:
    return f"{value:.1f}"


def markdown(
    info: dict[str, str],
    command: str,
    db_kind: str,
    args: argparse.Namespace,
    measured: dict[tuple[str, str, int], Measured],
    round_trips: list[RoundTrips],
    connections_opened: int,
    live_sessions: int,
    count_ms: float,
    wall_s: float,
) -> list[str]:
    lines = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {wall_s:.0f} s. Machine: "
        f'{info["nproc"]} cores (`nproc`), `lscpu` model name "{info["model"]}", '
        f"{info['memory']} RAM, Linux {info['kernel']}, CPython {info['python']}, "
        f"{db_kind}.",
        "",
        f"Command: `{command}`",
        "",
        "| profile | clients | path | requests | errors | throughput | p50 | p95 | p99 "
        "| p50 of each phase |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (profile, target, concurrency), m in measured.items():
        if not m.latencies_ms:
            continue
        p50, p95, p99 = percentiles(m.latencies_ms)
        path = "Tavus calls only (baseline)" if target == "tavus" else "`POST /sessions`"
        runs = " / ".join(ms(v) for v in m.rounds_p50)
        lines.append(
            f"| {profile} | {concurrency} | {path} | {m.requests:,} | {m.errors} "
            f"| {m.requests / m.elapsed_s:,.0f}/s | {ms(p50)} | {ms(p95)} | {ms(p99)} | {runs} |"
        )
    lines += [
        "",
        "Latency added by Palisade (Palisade's percentile minus the baseline's; ratio):",
        "",
        "| profile | clients | p50 added | p95 added | p99 added | p50 ratio | p99 ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for (profile, target, concurrency), m in measured.items():
        base = measured.get((profile, "tavus", concurrency))
        if target != "palisade" or base is None or not m.latencies_ms or not base.latencies_ms:
            continue
        b = percentiles(base.latencies_ms)
        p = percentiles(m.latencies_ms)
        lines.append(
            f"| {profile} | {concurrency} | {ms(p[0] - b[0])} ms | {ms(p[1] - b[1])} ms "
            f"| {ms(p[2] - b[2])} ms | {p[0] / b[0]:.1f} x | {p[2] / b[2]:.1f} x |"
        )
    lines += [
        "",
        "CPU per request, in milliseconds, by process (from `/proc/<pid>/stat`):",
        "",
        "| profile | clients | path | Palisade | simulator | PostgreSQL | load generator "
        "| other processes' share of the machine |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cores = os.cpu_count() or 1
    for (profile, target, concurrency), m in measured.items():
        if not m.latencies_ms:
            continue
        per = {k: 1000 * v / (m.requests + m.errors) for k, v in m.cpu_s.items()}
        path = "baseline" if target == "tavus" else "Palisade"
        pg = f"{per['postgres']:.2f}" if "postgres" in per else "n/a"
        ours = sum(v for k, v in m.cpu_s.items() if k != "machine")
        others = max(0.0, m.cpu_s["machine"] - ours) / (m.elapsed_s * cores)
        # /proc counts in clock ticks: a phase under two seconds gives no usable share.
        share = f"{min(others, 1.0):.0%}" if m.elapsed_s >= 2 else "n/a"
        lines.append(
            f"| {profile} | {concurrency} | {path} | {per['palisade']:.2f} | "
            f"{per['simulator']:.2f} | {pg} | {per['loader']:.2f} | {share} |"
        )
    lines += [
        "",
        f"Connections Palisade opened to its database (migration included): {connections_opened}.",
    ]
    lines += [
        "",
        f"At the end of the run the tenant had {live_sessions:,} live sessions; admission's "
        f"`count(*)` of them took {count_ms:.2f} ms of server time (median of 7), inside "
        "the tenant's row lock.",
    ]
    key = "with an Idempotency-Key" if args.idempotency_key else "without Idempotency-Key"
    for rt in round_trips:
        ps = rt.per_start
        lines += [
            "",
            f"Database round trips per {rt.profile} start ({key}), counted "
            f"over {rt.starts} starts: **{rt.round_trips}** = {ps['ping']} pre-pings x "
            f"{rt.ping_round_trips} + {ps['begin']} BEGIN + {ps['statement']} statements + "
            f"{ps['commit']} COMMIT + {ps['rollback']} ROLLBACK.",
            "",
            "In order: " + " → ".join(rt.sequence) if rt.sequence else "(order not recovered)",
        ]
        if rt.extra:
            once = "; ".join(f"{k} {v:+d}" for k, v in rt.extra.items())
            lines += [
                "",
                f"Over the {rt.starts} starts, beyond {rt.starts} times the above: {once}.",
            ]
    return lines


# --- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server to create bench_<hex> on")
    parser.add_argument("--concurrency", type=int, default=50, help="closed-loop clients")
    parser.add_argument("--requests", type=int, default=3000, help="per measured phase")
    parser.add_argument("--rounds", type=int, default=2, help="A/B pairs per profile (ABBA)")
    parser.add_argument("--warmup", type=int, default=200, help="requests per warm-up phase")
    parser.add_argument(
        "--sequential",
        type=int,
        default=200,
        help="one-client requests per profile and path, over two phases (0: none)",
    )
    parser.add_argument("--phase-seconds", type=float, default=30.0, help="time bound per phase")
    parser.add_argument("--max-seconds", type=float, default=250.0, help="bound of the load phases")
    parser.add_argument("--count-starts", type=int, default=100, help="starts per round-trip count")
    parser.add_argument(
        "--idempotency-key",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send a fresh Idempotency-Key with every POST /sessions",
    )
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "bench/session_latency.py", *sys.argv[1:]])
    began = time.monotonic()
    info = machine()

    with tempfile.TemporaryDirectory(prefix="palisade-bench-") as tmp, ExitStack() as stack_:
        workdir = Path(tmp)
        db = stack_.enter_context(database(args.database_url, workdir))
        db_kind = (
            f"PostgreSQL {db.version} at {urlsplit(args.database_url).netloc} over TCP"
            if args.database_url
            else f"embedded PostgreSQL {db.version} over a Unix socket"
        )
        report(f"database: {db_kind}")
        sim_port, palisade_port = free_port(), free_port()
        sim_log = workdir / "simulator.log"
        # The simulator's clock runs at 1/100 of real time and the face joins after an
        # hour of it: no timer fires and no webhook is sent during the run, so neither
        # target serves traffic other than what is measured.
        sim_command = [
            sys.executable, "-m", "app", "simulator", "--host", HOST, "--port", str(sim_port),
            "--time-scale", "0.01", "--replica-join-delay", "3600",
        ]  # fmt: skip
        sim_pid = stack_.enter_context(running(sim_command, clean_env({}), sim_log, workdir))
        stack = Stack(
            workdir=workdir,
            idempotency_key=args.idempotency_key,
            simulator_url=f"http://{HOST}:{sim_port}",
            palisade_url=f"http://{HOST}:{palisade_port}",
            env=clean_env(
                {
                    "PALISADE_MODE": "production",
                    "DATABASE_URL": db.url,
                    "TAVUS_API_KEY": secrets.token_urlsafe(24),
                    "TAVUS_BASE_URL": f"http://{HOST}:{sim_port}",
                    "PUBLIC_BASE_URL": f"http://{HOST}:{palisade_port}",
                    "ADMIN_TOKEN": secrets.token_urlsafe(32),
                    "SECRET_KEY": secrets.token_urlsafe(48),
                    # No session falls due for a status poll within the run: the number
                    # of live sessions here is an artefact of the benchmark.
                    "PALISADE_POLL_INTERVAL_SECONDS": "3600",
                }
            ),
        )
        wait_ready(f"{stack.simulator_url}/_sim/healthz", sim_log)
        connections_before = sessions_opened(db)
        palisade_log = workdir / "palisade.log"
        with running(
            palisade_command(palisade_port, migrate=True), stack.env, palisade_log, workdir
        ) as palisade_pid:
            wait_ready(f"{stack.palisade_url}/readyz", palisade_log)
            set_up_tenant(stack)
            capture_tavus_calls(stack)
            loader = Loader()
            try:
                meter = CpuMeter(
                    {"palisade": palisade_pid, "simulator": sim_pid, "loader": loader.pid},
                    db.postmaster_pid,
                )
                measured = run_phases(args, stack, loader, meter, began, sim_port, palisade_port)
            finally:
                loader.stop()
        connections_opened = sessions_opened(db) - connections_before
        live_sessions, count_ms = admission_count_cost(db.url)
        round_trips = [count_round_trips(stack, p, args.count_starts) for p in PROFILES]

    lines = markdown(
        info,
        command,
        db_kind,
        args,
        measured,
        round_trips,
        connections_opened,
        live_sessions,
        count_ms,
        time.monotonic() - began,
    )
    report()
    for line in lines:
        report(line)
    failed = [m for m in measured.values() if m.errors]
    for m in failed:
        report(f"errors in {m.label}: {m.errors}, first: {m.first_error}")
    if failed:
        sys.exit(1)


def run_phases(
    args: argparse.Namespace,
    stack: Stack,
    loader: Loader,
    meter: CpuMeter,
    began: float,
    sim_port: int,
    palisade_port: int,
) -> dict[tuple[str, str, int], Measured]:
    targets = {
        "tavus": (sim_port, stack.tavus_calls),
        "palisade": (palisade_port, {p: palisade_call(stack, p) for p in PROFILES}),
    }

    def spec(profile: str, target: str, requests: int, concurrency: int) -> PhaseSpec:
        port, calls = targets[target]
        budget = args.max_seconds - (time.monotonic() - began)
        return PhaseSpec(
            label=f"{profile}/{target}/{concurrency}",
            port=port,
            calls=calls[profile],
            requests=requests,
            concurrency=concurrency,
            max_seconds=max(1.0, min(args.phase_seconds, budget)),
        )

    for profile in PROFILES:
        for target in ("tavus", "palisade"):
            warm = loader.run(spec(profile, target, args.warmup, args.concurrency))
            report(
                f"warm-up {warm.label}: {len(warm.latencies_ms)} ok, {warm.errors} errors "
                f"in {warm.elapsed_s:.1f} s"
            )

    plan: list[tuple[str, str, int, int]] = []
    for round_ in range(args.rounds):
        order = ("tavus", "palisade") if round_ % 2 == 0 else ("palisade", "tavus")
        for profile in PROFILES:
            plan += [(profile, target, args.requests, args.concurrency) for target in order]
    if args.sequential:
        for profile in PROFILES:
            for target in ("tavus", "palisade", "palisade", "tavus"):
                plan.append((profile, target, args.sequential // 2, 1))

    measured: dict[tuple[str, str, int], Measured] = {}
    for profile, target, requests, concurrency in plan:
        if time.monotonic() - began > args.max_seconds:
            report(f"time bound reached: {profile}/{target}/{concurrency} skipped")
            continue
        before = meter.sample()
        result = loader.run(spec(profile, target, requests, concurrency))
        after = meter.sample()
        key = (profile, target, concurrency)
        m = measured.setdefault(key, Measured(result.label, profile, target, concurrency))
        m.add(result, {k: after[k] - before[k] for k in after})
        p50 = statistics.median(result.latencies_ms) if result.latencies_ms else float("nan")
        report(
            f"{result.label}: {len(result.latencies_ms)} ok, {result.errors} errors in "
            f"{result.elapsed_s:.1f} s, p50 {p50:.1f} ms"
        )
    rank = {"reuse": 0, "ephemeral": 1, "tavus": 0, "palisade": 1}
    return dict(
        sorted(
            measured.items(),
            key=lambda kv: (kv[0][2] != args.concurrency, rank[kv[0][0]], rank[kv[0][1]]),
        )
    )


if __name__ == "__main__":
    main()
