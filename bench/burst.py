"""A burst: N starts for one tenant sent at the same instant, with and without a warm pool,
beside the thin proxy (``bench.floor_app``) making the same Tavus calls.

    .venv/bin/python -m bench.burst [--database-url URL] [--starts 30] [--pool-size 10]

One ``palisade serve``, the Tavus simulator with a fixed latency of ``--tavus-ms`` on
every operation, and the thin proxy beside it. Each round fires one burst per path, in
an order that alternates between rounds:

- **reuse**: the suite's reuse profile (one Tavus call per start);
- **pooled**: an ephemeral profile whose ``warm_pool`` is full when the burst begins;
- **unpooled**: the same ephemeral profile without a pool (two Tavus calls per start);
- **thin reuse** and **thin ephemeral**: the thin proxy, one and two Tavus calls.

Every burst has its own keep-alive connections, opened before it is fired. A pooled
start is a hit when the PAL it got carries the pool's tag. It prints as markdown each
path's p50, p90 and max over all rounds, the pooled hits' p50 against reuse and the
misses' p50 against the unpooled burst. docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.domain.sessions import tags
from bench import workload
from bench.database import fresh_database
from bench.floor import running_floor
from bench.loadgen import ID
from bench.machine import describe
from bench.monitor import ProcessMonitor
from bench.stack import PROFILE_NAMES, TENANT_ID, Stack, running_stack
from bench.warm_pool import POOLED, TEMPLATE, wait_pool_full

UNPOOLED = "unpooled"
THIN_EPHEMERAL = "thin-ephemeral"
PATHS = ("reuse", POOLED, UNPOOLED, "thin-reuse", THIN_EPHEMERAL)


@dataclass
class Measured:
    latencies_ms: list[float] = field(default_factory=list)
    hits_ms: list[float] = field(default_factory=list)
    misses_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None


def add_profiles(stack: Stack, pool_size: int) -> None:
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_TOKEN']}"}
    pooled = {"strategy": "ephemeral", "pal_template": TEMPLATE}
    answer = httpx.patch(
        f"{stack.palisade_urls[0]}/tenants/{TENANT_ID}",
        headers=admin,
        json={
            "profiles": {
                POOLED: {**pooled, "warm_pool": {"size": pool_size}},
                UNPOOLED: pooled,
            }
        },
        timeout=30,
    )
    if answer.status_code != 200:
        raise RuntimeError(f"adding the profiles failed: {answer.text}")


async def fire(
    url: str, calls: list[tuple[dict[str, str], dict[str, Any]]]
) -> list[tuple[float, httpx.Response]]:
    """Send every call at once, each on a connection of its own opened beforehand."""
    limits = httpx.Limits(max_connections=len(calls), max_keepalive_connections=len(calls))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(http.get("/healthz") for _ in calls))

        async def one(
            headers: dict[str, str], body: dict[str, Any]
        ) -> tuple[float, httpx.Response]:
            begun = time.perf_counter()
            response = await http.post("/sessions", json=body, headers=headers)
            return (time.perf_counter() - begun) * 1000.0, response

        return await asyncio.gather(*(one(h, b) for h, b in calls))


def burst(stack: Stack, path: str, url: str, starts: int, pool_size: int) -> Measured:
    stack.retire_live_sessions()
    if path == POOLED:
        with httpx.Client(base_url=url, timeout=30) as http:
            wait_pool_full(http, stack.env["PALISADE_METRICS_TOKEN"], pool_size)
    profile = {"reuse": PROFILE_NAMES["reuse"], "thin-reuse": PROFILE_NAMES["reuse"]}.get(
        path, path
    )
    calls = []
    for i in range(starts):
        headers = {"Content-Type": "application/json"}
        if not path.startswith("thin"):
            headers |= {"Authorization": f"Bearer {stack.api_key}"}
            headers |= {"Idempotency-Key": str(uuid.uuid4())}
        calls.append((headers, {"profile": profile, "external_ref": f"burst-{i}"}))
    answers = asyncio.run(fire(url, calls))
    out = Measured()
    names: dict[str, str] = {}
    if path == POOLED:
        state = httpx.get(f"{stack.simulator_url}/_sim/state", timeout=30).json()
        names = {p["pal_id"]: p["pal_name"] for p in state["pals"]}
    for ms, response in answers:
        if response.status_code != 201:
            out.errors += 1
            out.first_error = out.first_error or f"{response.status_code} {response.text[:300]}"
            continue
        out.latencies_ms.append(ms)
        if path == POOLED:
            hit = tags.pool_id_from_name(names.get(response.json()["pal_id"]))
            (out.hits_ms if hit else out.misses_ms).append(ms)
    return out


def _p(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def report(measured: dict[str, Measured], rounds: list[dict[str, float]]) -> list[str]:
    lines = [
        "| path | starts | p50 | p90 | max | p50 per round |",
        "|---|---|---|---|---|---|",
    ]
    for path in PATHS:
        m = measured[path]
        per_round = " / ".join(f"{r[path]:.0f}" for r in rounds)
        lines.append(
            f"| {path} | {len(m.latencies_ms)} | {_p(m.latencies_ms, 50):.1f} ms "
            f"| {_p(m.latencies_ms, 90):.1f} ms | {max(m.latencies_ms, default=float('nan')):.1f}"
            f" ms | {per_round} ms |"
        )
    pooled, reuse, unpooled = measured[POOLED], measured["reuse"], measured[UNPOOLED]
    lines += [
        "",
        f"Pool hits: {len(pooled.hits_ms)} of {len(pooled.latencies_ms)}, p50 "
        f"{_p(pooled.hits_ms, 50):.1f} ms = "
        f"{_p(pooled.hits_ms, 50) / _p(reuse.latencies_ms, 50):.3f}x reuse's p50 "
        f"(hits' max {max(pooled.hits_ms, default=float('nan')):.1f} ms). Misses: p50 "
        f"{_p(pooled.misses_ms, 50):.1f} ms = "
        f"{_p(pooled.misses_ms, 50) / _p(unpooled.latencies_ms, 50):.3f}x the unpooled burst's"
        " p50.",
    ]
    for path in ("reuse", UNPOOLED):
        thin = "thin-reuse" if path == "reuse" else THIN_EPHEMERAL
        ratio = _p(measured[path].latencies_ms, 50) / _p(measured[thin].latencies_ms, 50)
        lines.append(f"{path} / {thin} at p50: {ratio:.3f}.")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--tavus-ms", type=float, default=150.0)
    parser.add_argument("--starts", type=int, default=30, help="starts per burst")
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="bursts per path")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="added to Palisade's environment (e.g. PALISADE_DB_POOL_SIZE=20)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    m = describe()
    out = [
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.python}, {m.kernel}, load average "
        f"{m.load_average[0]:.2f}. One Palisade process and one thin proxy, Tavus at "
        f"{args.tavus_ms:g} ms per call, {args.rounds} rounds of one burst of {args.starts} "
        f"starts per path, warm_pool.size {args.pool_size}.",
        "",
    ]
    measured = {path: Measured() for path in PATHS}
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="palisade-burst-") as tmp, ProcessMonitor() as monitor:
        workdir = Path(tmp)
        with (
            fresh_database(args.database_url, workdir) as database,
            running_stack(
                database, processes=1, sim_latency_ms=args.tavus_ms, workdir=workdir,
                monitor=monitor, extra_env=dict(e.split("=", 1) for e in args.env),
            ) as stack,
        ):  # fmt: skip
            add_profiles(stack, args.pool_size)
            reuse = workload.capture(stack)["reuse"]
            (conversation,) = reuse.direct[0]
            body = conversation.body.replace(ID, "{session}")
            pal_body = json.dumps({**TEMPLATE, "pal_name": "Bench coach {session}"})
            extra = {"FLOOR_EPHEMERAL_PROFILE": THIN_EPHEMERAL, "FLOOR_PAL_BODY": pal_body}
            with running_floor(
                1, database.url, stack.simulator_url, body, workdir, monitor, extra
            ) as (thin_url,):
                for round_ in range(args.rounds):
                    order = PATHS if round_ % 2 == 0 else PATHS[::-1]
                    medians = {}
                    for path in order:
                        url = thin_url if path.startswith("thin") else stack.palisade_urls[0]
                        got = burst(stack, path, url, args.starts, args.pool_size)
                        total = measured[path]
                        total.latencies_ms += got.latencies_ms
                        total.hits_ms += got.hits_ms
                        total.misses_ms += got.misses_ms
                        total.errors += got.errors
                        total.first_error = total.first_error or got.first_error
                        medians[path] = _p(got.latencies_ms, 50)
                    rounds.append(medians)
    out += report(measured, rounds)
    errors = sum(m.errors for m in measured.values())
    if errors:
        first = next(m.first_error for m in measured.values() if m.first_error)
        out += ["", f"**{errors} starts failed**, first: {first}"]
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
