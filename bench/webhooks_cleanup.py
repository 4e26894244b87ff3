"""Tavus webhook acknowledgement latency, and how fast the reconciler drains a cleanup
backlog.

Starts, as separate processes on loopback, the Tavus simulator, one ``palisade serve``
in production mode on a fresh PostgreSQL database and a load-generator process, the way
``bench/session_latency.py`` does (its helpers are reused).

1. Webhooks: ``--sessions`` reuse sessions are started through ``POST /sessions``. The
   load generator reads each conversation's ``callback_url`` from the simulator and
   POSTs well-formed Tavus events to it with ``--concurrency`` keep-alive clients:
   ``system.replica_joined`` and ``application.perception_analysis``, each with its own
   timestamp, and every ``--duplicate-every``-th one an exact copy of the previous body
   sent to that session. Latency is the time until the acknowledgement is read.
2. Cleanup drain: ``--drain`` PALs are created on the simulator, then as many sessions
   are inserted in one transaction, ``ended`` with ``cleanup = 'pending'``, an
   ephemeral ``pal_id`` each and ``next_check_at = now()``. The time until no session
   is pending (database polled every 0.5 s) and until the simulator has logged every
   ``DELETE`` is measured with the Palisade process already running, then again with
   three, on a fresh backlog. Every PAL must have been deleted exactly once.

    .venv/bin/python bench/webhooks_cleanup.py
    .venv/bin/python bench/webhooks_cleanup.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres

With ``--database-url`` a database ``bench_<hex>`` is created on that server and dropped
at the end; without it an embedded PostgreSQL runs in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import secrets
import shlex
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from session_latency import (
    HOST,
    PROFILE_NAMES,
    TENANT_ID,
    CpuMeter,
    HttpConnection,
    Stack,
    clean_env,
    database,
    free_port,
    machine,
    palisade_command,
    percentiles,
    report,
    running,
    session_body,
    session_headers,
    set_up_tenant,
    wait_ready,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.domain.tenants.demo import DEMO_FACE_ID
from app.settings import normalise_database_url

EVENT_TYPES = ("system.replica_joined", "application.perception_analysis")
ANALYSIS = (
    "The user sat facing the camera in a well-lit room, spoke calmly and looked engaged "
    "for most of the call; no other person was visible."
)


# --- load generator (runs in its own process) -----------------------------------------


@dataclass(frozen=True)
class WebhookSpec:
    port: int
    targets: tuple[tuple[str, str, str], ...]  # (path?token, conversation_id, callback_url)
    events: int
    concurrency: int
    duplicate_every: int
    max_seconds: float
    first: int  # number of the first event, so warm-up and measured bodies differ


@dataclass
class WebhookResult:
    new_ms: list[float] = field(default_factory=list)
    duplicate_ms: list[float] = field(default_factory=list)
    sent_duplicates: int = 0
    errors: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0

    @property
    def answered(self) -> int:
        return len(self.new_ms) + len(self.duplicate_ms)


@dataclass(frozen=True)
class PalSpec:
    port: int
    api_key: str
    session_ids: tuple[str, ...]
    concurrency: int


def _event(number: int, conversation_id: str, callback_url: str) -> bytes:
    event_type = EVENT_TYPES[number % len(EVENT_TYPES)]
    # A distinct timestamp per event makes every body distinct: only exact resends
    # are deduplicated.
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=number)
    properties: dict[str, Any] = {"replica_id": "r-bench"}
    if event_type == "application.perception_analysis":
        properties["analysis"] = ANALYSIS
    body = {
        "properties": properties,
        "conversation_id": conversation_id,
        "webhook_url": callback_url,
        "event_type": event_type,
        "message_type": event_type.split(".", 1)[0],
        "timestamp": at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }
    return json.dumps(body).encode()


async def send_webhooks(spec: WebhookSpec) -> WebhookResult:
    result = WebhookResult()
    connections = [HttpConnection(spec.port) for _ in range(spec.concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    last_body: dict[int, bytes] = {}
    issued = 0
    started = time.perf_counter()
    stop_at = started + spec.max_seconds

    async def client(connection: HttpConnection) -> None:
        nonlocal issued
        while issued < spec.events and time.perf_counter() < stop_at:
            number = spec.first + issued
            issued += 1
            index = number % len(spec.targets)
            path, conversation_id, callback_url = spec.targets[index]
            previous = last_body.get(index)
            if previous is not None and number % spec.duplicate_every == 0:
                body = previous
                result.sent_duplicates += 1
            else:
                body = _event(number, conversation_id, callback_url)
                last_body[index] = body
            begun = time.perf_counter()
            try:
                status, payload = await connection.request("POST", path, "", body)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                status, payload = 599, repr(exc).encode()
                await connection.close()
            elapsed_ms = (time.perf_counter() - begun) * 1000.0
            if status != 200:
                result.errors += 1
                if result.first_error is None:
                    result.first_error = f"{status} {payload[:300]!r}"
            elif b'"duplicate"' in payload:
                result.duplicate_ms.append(elapsed_ms)
            else:
                result.new_ms.append(elapsed_ms)

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        result.elapsed_s = time.perf_counter() - started
        await asyncio.gather(*(c.close() for c in connections))
    return result


async def create_pals(spec: PalSpec) -> tuple[list[str], float]:
    """One PAL per session id, tagged as Palisade tags an ephemeral PAL."""
    pal_ids: list[str] = [""] * len(spec.session_ids)
    connections = [HttpConnection(spec.port) for _ in range(spec.concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    headers = f"x-api-key: {spec.api_key}\r\n"
    next_index = 0
    started = time.perf_counter()

    async def client(connection: HttpConnection) -> None:
        nonlocal next_index
        while next_index < len(spec.session_ids):
            index = next_index
            next_index += 1
            body = {
                "pal_name": f"Bench voices (palisade {spec.session_ids[index]})",
                "default_face_id": DEMO_FACE_ID,
                "system_prompt": "You are a friendly benchmark persona.",
            }
            status, payload = await connection.request(
                "POST", "/v2/pals", headers, json.dumps(body).encode()
            )
            if status >= 300:
                raise RuntimeError(f"PAL creation failed: {status} {payload[:300]!r}")
            pal_ids[index] = json.loads(payload)["pal_id"]

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    return pal_ids, time.perf_counter() - started


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
            if isinstance(spec, WebhookSpec):
                pipe.send(runner(send_webhooks(spec)))
            else:
                pipe.send(runner(create_pals(spec)))
        except Exception as exc:  # reported by the parent rather than lost with the process
            pipe.send(RuntimeError(f"load generator: {exc!r}"))


class Loader:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=_loader_main, args=(child,), daemon=True)
        self.process.start()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def run(self, spec: WebhookSpec | PalSpec, within_s: float) -> Any:
        self.pipe.send(spec)
        if not self.pipe.poll(within_s):
            raise RuntimeError("the load generator did not answer in time")
        answer = self.pipe.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def stop(self) -> None:
        if self.process.is_alive():
            self.pipe.send(None)
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


# --- webhooks --------------------------------------------------------------------------


@dataclass
class WebhookRun:
    result: WebhookResult
    cpu_s: dict[str, float]
    events_stored: int


def start_sessions(stack: Stack, count: int) -> list[dict[str, Any]]:
    body = json.dumps(session_body("reuse"))
    sessions = []
    with httpx.Client(base_url=stack.palisade_url, timeout=30) as http:
        for _ in range(count):
            answer = http.post(
                "/sessions", headers=session_headers(stack, str(uuid.uuid4())), content=body
            )
            if answer.status_code != 201:
                raise RuntimeError(f"start failed: {answer.text}")
            sessions.append(answer.json())
    return sessions


def callback_targets(stack: Stack, sessions: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    state = httpx.get(f"{stack.simulator_url}/_sim/state", timeout=60).json()
    by_id = {c["conversation_id"]: c["callback_url"] for c in state["conversations"]}
    targets = []
    for session in sessions:
        url = by_id[session["conversation_id"]]
        parts = urlsplit(url)
        targets.append((f"{parts.path}?{parts.query}", session["conversation_id"], url))
    return targets


def count_rows(url: str, statement: str) -> int:
    async def run() -> int:
        engine = create_async_engine(normalise_database_url(url))
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text(statement))).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def run_webhooks(
    args: argparse.Namespace, stack: Stack, loader: Loader, meter: CpuMeter, db_url: str
) -> WebhookRun:
    sessions = start_sessions(stack, args.sessions)
    targets = tuple(callback_targets(stack, sessions))
    port = urlsplit(stack.palisade_url).port
    assert port is not None

    def spec(events: int, first: int) -> WebhookSpec:
        return WebhookSpec(
            port=port,
            targets=targets,
            events=events,
            concurrency=args.concurrency,
            duplicate_every=args.duplicate_every,
            max_seconds=args.webhook_seconds,
            first=first,
        )

    warm: WebhookResult = loader.run(spec(args.warmup, 0), args.webhook_seconds + 60)
    report(f"webhook warm-up: {warm.answered} answered, {warm.errors} errors")
    stored_before = count_rows(db_url, "SELECT count(*) FROM session_event WHERE kind = 'webhook'")
    before = meter.sample()
    result: WebhookResult = loader.run(spec(args.events, args.warmup), args.webhook_seconds + 60)
    after = meter.sample()
    stored = (
        count_rows(db_url, "SELECT count(*) FROM session_event WHERE kind = 'webhook'")
        - stored_before
    )
    report(
        f"webhooks: {len(result.new_ms)} new, {len(result.duplicate_ms)} duplicates, "
        f"{result.errors} errors in {result.elapsed_s:.1f} s; {stored} events stored"
    )
    return WebhookRun(result, {k: after[k] - before[k] for k in after}, stored)


# --- cleanup drain ---------------------------------------------------------------------


@dataclass
class DrainRun:
    processes: int
    sessions: int
    pals_created_s: float
    db_drained_s: float | None
    sim_deleted_s: float | None
    delete_calls: dict[int, int]  # DELETEs received -> PALs
    still_present: int
    cleanup_done: int
    cpu_s: dict[str, float]


INSERT_BACKLOG = """
INSERT INTO session (id, tenant_id, profile, state, strategy, strategy_reason, cleanup,
                     pal_id, pal_ephemeral, request, resolved, active_at, ended_at,
                     end_reason, next_check_at)
SELECT s.id::uuid, :tenant, :profile, 'ended', 'ephemeral', 'the profile is ephemeral',
       'pending', s.pal_id, true, '{}'::jsonb,
       jsonb_build_object('pal_name', 'Bench voices (palisade ' || s.id || ')'),
       now(), now(), 'ended_by_client', now()
FROM unnest(CAST(:ids AS text[]), CAST(:pal_ids AS text[])) AS s(id, pal_id)
"""


async def _insert_and_watch(
    db_url: str,
    simulator_url: str,
    session_ids: list[str],
    pal_ids: list[str],
    since_seq: int,
    max_seconds: float,
) -> tuple[float | None, float | None, int]:
    """Insert the backlog, then time the drain: (database, simulator, last call seq)."""
    engine = create_async_engine(normalise_database_url(db_url))
    wanted = set(pal_ids)
    deleted: set[str] = set()
    db_done: float | None = None
    sim_done: float | None = None
    pending = text(
        "SELECT count(*) FROM session WHERE cleanup = 'pending' AND state IN ('ended', 'failed')"
    )
    try:
        async with httpx.AsyncClient(base_url=simulator_url, timeout=30) as sim:
            async with engine.begin() as conn:
                await conn.execute(
                    text(INSERT_BACKLOG),
                    {
                        "tenant": TENANT_ID,
                        "profile": PROFILE_NAMES["ephemeral"],
                        "ids": session_ids,
                        "pal_ids": pal_ids,
                    },
                )
            # The rows become due when the insert commits.
            started = time.perf_counter()
            async with engine.connect() as conn:
                while time.perf_counter() - started < max_seconds:
                    await asyncio.sleep(0.5)
                    now = time.perf_counter() - started
                    if db_done is None:
                        await conn.rollback()
                        if int((await conn.execute(pending)).scalar_one()) == 0:
                            db_done = now
                    if sim_done is None:
                        calls = await sim.get(
                            "/_sim/calls", params={"operation": "pal.delete", "since": since_seq}
                        )
                        for call in calls.json()["data"]:
                            since_seq = max(since_seq, call["seq"])
                            if call["object_id"] in wanted and call["status"] == 204:
                                deleted.add(call["object_id"])
                        if deleted == wanted:
                            sim_done = now
                    if db_done is not None and sim_done is not None:
                        break
    finally:
        await engine.dispose()
    return db_done, sim_done, since_seq


def run_drain(
    args: argparse.Namespace,
    stack: Stack,
    loader: Loader,
    meter: CpuMeter,
    db_url: str,
    processes: int,
    since_seq: int,
) -> tuple[DrainRun, int]:
    session_ids = [str(uuid.uuid4()) for _ in range(args.drain)]
    sim_port = urlsplit(stack.simulator_url).port
    assert sim_port is not None
    pal_spec = PalSpec(sim_port, stack.env["TAVUS_API_KEY"], tuple(session_ids), 50)
    pal_ids, pals_s = loader.run(pal_spec, 300)
    report(f"{len(pal_ids)} PALs created on the simulator in {pals_s:.1f} s")
    before = meter.sample()
    db_s, sim_s, since_seq = asyncio.run(
        _insert_and_watch(
            db_url, stack.simulator_url, session_ids, pal_ids, since_seq, args.drain_seconds
        )
    )
    after = meter.sample()
    state = httpx.get(f"{stack.simulator_url}/_sim/state", timeout=120).json()
    ours = set(pal_ids)
    calls: dict[int, int] = {}
    present = 0
    for pal in state["pals"]:
        if pal["pal_id"] in ours:
            calls[pal["delete_calls"]] = calls.get(pal["delete_calls"], 0) + 1
            present += pal["deleted_at"] is None
    quoted = ",".join(f"'{sid}'" for sid in session_ids)
    done = count_rows(
        db_url, f"SELECT count(*) FROM session WHERE cleanup = 'done' AND id IN ({quoted})"
    )
    run = DrainRun(
        processes=processes,
        sessions=args.drain,
        pals_created_s=pals_s,
        db_drained_s=db_s,
        sim_deleted_s=sim_s,
        delete_calls=dict(sorted(calls.items())),
        still_present=present,
        cleanup_done=done,
        cpu_s={k: after[k] - before[k] for k in after},
    )
    report(
        f"drain with {processes} process(es): database {_secs(db_s)}, simulator "
        f"{_secs(sim_s)}, DELETEs per PAL {run.delete_calls}, cleanup done {done}"
    )
    return run, since_seq


# --- report ----------------------------------------------------------------------------


def _secs(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def _row(label: str, samples: list[float], elapsed_s: float) -> str:
    if len(samples) < 2:
        return f"| {label} | {len(samples):,} | n/a | n/a | n/a | n/a | n/a |"
    p50, p95, p99 = percentiles(samples)
    return (
        f"| {label} | {len(samples):,} | {len(samples) / elapsed_s:,.0f}/s | {p50:.1f} "
        f"| {p95:.1f} | {p99:.1f} | {max(samples):.1f} |"
    )


def markdown(
    info: dict[str, str],
    command: str,
    db_kind: str,
    args: argparse.Namespace,
    webhooks: WebhookRun,
    drains: list[DrainRun],
    wall_s: float,
) -> list[str]:
    r = webhooks.result
    both = r.new_ms + r.duplicate_ms
    cores = info["nproc"]
    lines = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {wall_s:.0f} s. Machine: "
        f'{cores} cores (`nproc`), `lscpu` model name "{info["model"]}", '
        f"{info['memory']} RAM, Linux {info['kernel']}, CPython {info['python']}, "
        f"{db_kind}.",
        "",
        f"Command: `{command}`",
        "",
        f"Webhooks: {args.sessions} active sessions, {args.concurrency} clients, "
        f"{r.answered:,} events answered in {r.elapsed_s:.1f} s ({r.sent_duplicates:,} "
        f"exact resends), {r.errors} errors; {webhooks.events_stored:,} events stored.",
        "",
        "| answer | events | rate | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
        _row("all", both, r.elapsed_s),
        _row("`ok` (stored)", r.new_ms, r.elapsed_s),
        _row("`duplicate`", r.duplicate_ms, r.elapsed_s),
    ]
    answered = max(r.answered + r.errors, 1)
    per = {k: 1000 * v / answered for k, v in webhooks.cpu_s.items()}
    pg = f"{per['postgres']:.2f}" if "postgres" in per else "n/a"
    lines += [
        "",
        f"CPU per event: Palisade {per['palisade']:.2f} ms, PostgreSQL {pg} ms, "
        f"load generator {per['loader']:.2f} ms, simulator {per['simulator']:.2f} ms.",
        "",
        "| Palisade processes | sessions | PALs deleted on the simulator | no session "
        "pending | deletes/s | DELETEs per PAL | PALs left | Palisade CPU | PostgreSQL CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in drains:
        rate = f"{d.sessions / d.db_drained_s:,.0f}" if d.db_drained_s else "n/a"
        calls = ", ".join(f"{n:,} PALs x {c}" for c, n in d.delete_calls.items())
        palisade = sum(v for k, v in d.cpu_s.items() if k.startswith("palisade"))
        pg_s = f"{d.cpu_s['postgres']:.1f} s" if "postgres" in d.cpu_s else "n/a"
        lines.append(
            f"| {d.processes} | {d.sessions:,} | {_secs(d.sim_deleted_s)} "
            f"| {_secs(d.db_drained_s)} | {rate} | {calls} | {d.still_present} "
            f"| {palisade:.1f} s | {pg_s} |"
        )
    if len(drains) == 2 and drains[0].db_drained_s and drains[1].db_drained_s:
        lines += [
            "",
            f"{drains[1].processes} processes drained in "
            f"{drains[1].db_drained_s / drains[0].db_drained_s:.2f} x the time of "
            f"{drains[0].processes}.",
        ]
    return lines


# --- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server to create bench_<hex> on")
    parser.add_argument("--sessions", type=int, default=200, help="active sessions for webhooks")
    parser.add_argument("--concurrency", type=int, default=50, help="webhook clients")
    parser.add_argument("--events", type=int, default=10_000, help="measured webhook events")
    parser.add_argument("--warmup", type=int, default=1_000, help="warm-up webhook events")
    parser.add_argument("--duplicate-every", type=int, default=10, help="every n-th is a resend")
    parser.add_argument("--webhook-seconds", type=float, default=60.0, help="bound per phase")
    parser.add_argument("--drain", type=int, default=10_000, help="sessions in each backlog")
    parser.add_argument("--drain-seconds", type=float, default=150.0, help="bound per drain")
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 3], help="Palisade processes per drain"
    )
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "bench/webhooks_cleanup.py", *sys.argv[1:]])
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
        # As in session_latency.py: the simulator's clock runs at 1/100 and the face joins
        # after an hour of it, so the simulator sends no webhook of its own.
        sim_command = [
            sys.executable, "-m", "app", "simulator", "--host", HOST, "--port", str(sim_port),
            "--time-scale", "0.01", "--replica-join-delay", "3600",
        ]  # fmt: skip
        sim_pid = stack_.enter_context(running(sim_command, clean_env({}), sim_log, workdir))
        stack = Stack(
            workdir=workdir,
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
                    # The active sessions must not fall due for a status poll: the drain
                    # measures the cleanup backlog alone.
                    "PALISADE_POLL_INTERVAL_SECONDS": "3600",
                }
            ),
        )
        wait_ready(f"{stack.simulator_url}/_sim/healthz", sim_log)
        palisade_log = workdir / "palisade.log"
        palisade_pid = stack_.enter_context(
            running(palisade_command(palisade_port, migrate=True), stack.env, palisade_log, workdir)
        )
        wait_ready(f"{stack.palisade_url}/readyz", palisade_log)
        set_up_tenant(stack)
        loader = Loader()
        stack_.callback(loader.stop)
        pids = {"palisade": palisade_pid, "simulator": sim_pid, "loader": loader.pid}
        meter = CpuMeter(pids, db.postmaster_pid)
        webhooks = run_webhooks(args, stack, loader, meter, db.url)

        drains: list[DrainRun] = []
        since_seq = 0
        for processes in sorted(args.processes):
            while len(pids) - 2 < processes:
                port = free_port()
                log = workdir / f"palisade-{port}.log"
                env = {**stack.env, "PUBLIC_BASE_URL": f"http://{HOST}:{port}"}
                command_ = palisade_command(port, migrate=False)
                pids[f"palisade-{port}"] = stack_.enter_context(
                    running(command_, env, log, workdir)
                )
                wait_ready(f"http://{HOST}:{port}/readyz", log)
            run, since_seq = run_drain(args, stack, loader, meter, db.url, processes, since_seq)
            drains.append(run)

    lines = markdown(info, command, db_kind, args, webhooks, drains, time.monotonic() - began)
    report()
    for line in lines:
        report(line)
    failed = webhooks.result.errors or any(
        d.db_drained_s is None or d.still_present or set(d.delete_calls) != {1} for d in drains
    )
    if failed:
        report(f"first webhook error: {webhooks.result.first_error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
