"""Start latency of an ephemeral session served from the warm pool, against a reuse one.

Approach B (a fresh PAL per session) normally pays a PAL create before the conversation;
a warm-pool hit only creates the conversation, like approach A. This measures, in one
run, the p50 latency of ``POST /sessions`` for

- **reuse**: a profile with a persistent PAL (one Tavus call: the conversation);
- **pooled**: an ephemeral profile with ``warm_pool`` (a hit: the conversation only),

and reports ``p50(pooled hit) / p50(reuse)`` (target: at most 1.1).

Processes, as in the benchmark suite (``bench/stack.py``): the Tavus simulator with a
fixed latency fault of ``--tavus-ms`` (150 ms) on every API operation, one ``palisade
serve`` in production mode on a fresh database, and this script as a one-client load
generator
(keep-alive, a fresh ``Idempotency-Key`` per request). Phases alternate reuse and
pooled (``--rounds`` pairs of ``--requests`` each). Before each pooled phase the script
waits until the pool is full; each pooled start is classified as a hit or a miss by the
name of the PAL it got (a pool PAL carries the pool's tag), and only hits enter the
pooled p50. Sessions are left running: the simulator's clock runs at 1/100 of real
time, so no timer fires and no webhook is sent during the run.

    .venv/bin/python -m bench.warm_pool
    .venv/bin/python -m bench.warm_pool --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.domain.sessions import tags
from app.domain.tenants.demo import DEMO_FACE_ID, DEMO_PROMPT
from bench import machine
from bench.database import fresh_database
from bench.monitor import ProcessMonitor
from bench.report import progress
from bench.stack import PROFILE_NAMES, TENANT_ID, Stack, running_stack

# The suite's tenant has a reuse profile; this run adds an ephemeral one with a pool.
POOLED = "pooled"
PROFILES = (PROFILE_NAMES["reuse"], POOLED)
TEMPLATE = {
    "pal_name": "Bench coach",
    "default_face_id": DEMO_FACE_ID,
    "system_prompt": DEMO_PROMPT,
    "layers": {"tts": {"tts_engine": "cartesia", "external_voice_id": "voice-calm"}},
}


@dataclass
class Phase:
    profile: str
    latencies_ms: list[float] = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    errors: int = 0
    first_error: str | None = None


def add_pooled_profile(stack: Stack, size: int) -> None:
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_TOKEN']}"}
    profile = {"strategy": "ephemeral", "pal_template": TEMPLATE, "warm_pool": {"size": size}}
    answer = httpx.patch(
        f"{stack.palisade_urls[0]}/tenants/{TENANT_ID}",
        headers=admin,
        json={"profiles": {POOLED: profile}},
        timeout=30,
    )
    if answer.status_code != 200:
        raise RuntimeError(f"adding the pooled profile failed: {answer.text}")


def ready_in_pool(http: httpx.Client, metrics_token: str) -> float:
    scrape = http.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    for family in text_string_to_metric_families(scrape.text):
        for sample in family.samples:
            if sample.name == "palisade_warm_pool_pals" and sample.labels == {
                "tenant": TENANT_ID,
                "profile": POOLED,
                "state": "ready",
            }:
                return sample.value
    return 0.0


def wait_pool_full(
    http: httpx.Client, metrics_token: str, size: int, within_s: float = 60.0
) -> None:
    deadline = time.monotonic() + within_s
    while ready_in_pool(http, metrics_token) < size:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the pool did not reach {size} ready PALs in {within_s:.0f} s")
        time.sleep(0.05)


def ready_for(stack: Stack, http: httpx.Client, profile: str, pool_size: int) -> None:
    # Sessions are left running; those of earlier phases would count against the tenant's
    # cap on PALs held (PALISADE_POOL_MAX_PALS_PER_TENANT) and stop the refill.
    stack.retire_live_sessions()
    if profile == POOLED:
        wait_pool_full(http, stack.env["PALISADE_METRICS_TOKEN"], pool_size)


def run_phase(
    http: httpx.Client, api_key: str, profile: str, requests: int, pause_s: float
) -> tuple[Phase, list[tuple[float, str]]]:
    phase = Phase(profile)
    started: list[tuple[float, str]] = []  # (latency, pal_id) of each success
    for i in range(requests):
        headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": str(uuid.uuid4())}
        body = {"profile": profile, "external_ref": f"{profile}-{i}"}
        begun = time.perf_counter()
        response = http.post("/sessions", json=body, headers=headers)
        elapsed_ms = (time.perf_counter() - begun) * 1000.0
        if response.status_code != 201:
            phase.errors += 1
            phase.first_error = phase.first_error or f"{response.status_code} {response.text[:300]}"
        else:
            started.append((elapsed_ms, response.json()["pal_id"]))
        if pause_s:
            time.sleep(pause_s)
    return phase, started


def classify(phase: Phase, started: list[tuple[float, str]], simulator_url: str) -> None:
    if phase.profile != POOLED:
        phase.latencies_ms += [ms for ms, _ in started]
        return
    names = {
        p["pal_id"]: p["pal_name"]
        for p in httpx.get(f"{simulator_url}/_sim/state", timeout=30).json()["pals"]
    }
    for ms, pal_id in started:
        if tags.pool_id_from_name(names.get(pal_id)):
            phase.hits += 1
            phase.latencies_ms.append(ms)
        else:
            phase.misses += 1


def p(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server to create bench_<hex> on")
    parser.add_argument("--tavus-ms", type=float, default=150.0, help="latency of every Tavus call")
    parser.add_argument("--requests", type=int, default=60, help="starts per phase")
    parser.add_argument("--rounds", type=int, default=2, help="reuse/pooled phase pairs")
    parser.add_argument("--pool-size", type=int, default=5, help="warm_pool.size of the profile")
    parser.add_argument("--pause-ms", type=float, default=0.0, help="pause between two starts")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured starts per profile")
    args = parser.parse_args()
    pause_s = args.pause_ms / 1000.0
    command = shlex.join([".venv/bin/python", "-m", "bench.warm_pool", *sys.argv[1:]])
    began = time.monotonic()
    host = machine.describe()
    reuse_name = PROFILE_NAMES["reuse"]

    with (
        tempfile.TemporaryDirectory(prefix="palisade-bench-") as tmp,
        ProcessMonitor() as monitor,
        fresh_database(args.database_url, Path(tmp)) as database,
        running_stack(
            database,
            processes=1,
            sim_latency_ms=args.tavus_ms,
            workdir=Path(tmp),
            monitor=monitor,
        ) as stack,
    ):
        progress(f"database: PostgreSQL {database.server_version} ({database.where})")
        add_pooled_profile(stack, args.pool_size)
        measured = {profile: Phase(profile) for profile in PROFILES}
        with httpx.Client(base_url=stack.palisade_urls[0], timeout=60) as http:
            for profile in PROFILES:
                ready_for(stack, http, profile, args.pool_size)
                run_phase(http, stack.api_key, profile, args.warmup, pause_s)
            for round_ in range(args.rounds):
                order = PROFILES if round_ % 2 == 0 else PROFILES[::-1]
                for profile in order:
                    ready_for(stack, http, profile, args.pool_size)
                    phase, started = run_phase(http, stack.api_key, profile, args.requests, pause_s)
                    classify(phase, started, stack.simulator_url)
                    total = measured[profile]
                    total.latencies_ms += phase.latencies_ms
                    total.hits += phase.hits
                    total.misses += phase.misses
                    total.errors += phase.errors
                    total.first_error = total.first_error or phase.first_error
                    progress(
                        f"{profile} round {round_ + 1}: {len(phase.latencies_ms)} measured, "
                        f"p50 {p(phase.latencies_ms, 50):.1f} ms"
                        + (
                            f", {phase.hits} hits / {phase.misses} misses"
                            if profile == POOLED
                            else ""
                        )
                        + (f", {phase.errors} errors" if phase.errors else "")
                    )
        where = f"PostgreSQL {database.server_version} ({database.where})"

    reuse, pooled = measured[reuse_name], measured[POOLED]
    ratio = p(pooled.latencies_ms, 50) / p(reuse.latencies_ms, 50)
    lines = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {time.monotonic() - began:.0f} s. "
        f"Machine: {host.cores} cores, {host.cpu_model}, "
        f"{host.memory_bytes / 2**30:.1f} GiB RAM, {host.kernel}, {host.python}, {where}; "
        f"load average at start {' / '.join(f'{x:.2f}' for x in host.load_average)}.",
        "",
        f"Command: `{command}`",
        "",
        f"Every Tavus call takes {args.tavus_ms:.0f} ms (simulator latency fault); one client, "
        f"{args.rounds} rounds of {args.requests} starts per profile, warm_pool.size "
        f"{args.pool_size}.",
        "",
        "| profile | Tavus calls per start | measured | pool hits / misses | p50 | p95 |",
        "|---|---|---|---|---|---|",
        f"| reuse | 1 | {len(reuse.latencies_ms)} | n/a | {p(reuse.latencies_ms, 50):.1f} ms "
        f"| {p(reuse.latencies_ms, 95):.1f} ms |",
        f"| ephemeral, warm-pool hit | 1 | {len(pooled.latencies_ms)} | {pooled.hits} / "
        f"{pooled.misses} | {p(pooled.latencies_ms, 50):.1f} ms "
        f"| {p(pooled.latencies_ms, 95):.1f} ms |",
        "",
        f"**p50 ratio, ephemeral with a warm-pool hit / reuse: {ratio:.3f}** (target ≤ 1.1).",
    ]
    progress("")
    for line in lines:
        progress(line)
    failed = [m for m in measured.values() if m.errors]
    for m in failed:
        progress(f"errors in {m.profile}: {m.errors}, first: {m.first_error}")
    if failed or not pooled.latencies_ms or not reuse.latencies_ms:
        sys.exit(1)


if __name__ == "__main__":
    main()
