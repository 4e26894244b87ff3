"""Throughput of the Tavus simulator over real sockets.

Starts the simulator (one uvicorn worker) in a subprocess on a loopback port and
drives it from separate load-generator processes, each speaking HTTP/1.1 over one
keep-alive connection through ``httpx.HTTPTransport`` (httpx's cheapest layer per
request, which matters on a small machine where loaders and simulator share cores).
Each "session" is the mix Palisade produces: create PAL, create conversation, get
conversation, end conversation, delete PAL. Prints requests/s and the simulator's own CPU use.

    .venv/bin/python -m bench.simulator_throughput --requests 60000 --loaders 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

import httpx

from bench.monitor import ProcessMonitor
from bench.report import progress
from bench.stats import percentile
from tests.support.processes import clean_env, free_port, running, wait_ready

HOST = "127.0.0.1"
OPS_PER_SESSION = 5


@dataclass
class LoaderResult:
    requests: int = 0
    errors: int = 0
    started: float = 0.0
    finished: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)


class _Loader:
    def __init__(self, base_url: str, result: LoaderResult) -> None:
        self.base_url = base_url
        self.result = result
        # httpx's transport layer, without the client's per-request URL merging,
        # cookie and redirect handling: the cheapest way to speak HTTP with httpx.
        self.transport = httpx.HTTPTransport()
        self.headers = {"x-api-key": "bench", "host": base_url.split("//", 1)[1]}

    def call(self, method: str, path: str, json: object | None = None) -> httpx.Response:
        request = httpx.Request(method, self.base_url + path, headers=self.headers, json=json)
        started = time.perf_counter()
        response = self.transport.handle_request(request)
        response.read()
        response.close()
        self.result.latencies_ms.append((time.perf_counter() - started) * 1000.0)
        self.result.requests += 1
        if response.status_code >= 400:
            self.result.errors += 1
        return response

    def session(self, n: int) -> None:
        pal = self.call(
            "POST",
            "/v2/pals",
            {"pal_name": f"bench-{n}", "default_face_id": "r79e1c033f", "system_prompt": "Hi."},
        )
        pal_id = pal.json()["pal_id"]
        conv = self.call(
            "POST",
            "/v2/conversations",
            {
                "pal_id": pal_id,
                "conversation_name": f"bench-{n}",
                "properties": {"max_call_duration": 600, "participant_absent_timeout": 120},
            },
        )
        conversation_id = conv.json()["conversation_id"]
        self.call("GET", f"/v2/conversations/{conversation_id}")
        self.call("POST", f"/v2/conversations/{conversation_id}/end")
        self.call("DELETE", f"/v2/pals/{pal_id}")


def _loader_main(
    base_url: str,
    sessions: int,
    deadline_s: float,
    go: MpEvent,
    out: mp.Queue[LoaderResult],
) -> None:
    # Loaders yield the CPU to the simulator, so the figure measures the simulator
    # rather than the scheduler's fairness between processes.
    os.nice(10)
    result = LoaderResult()
    loader = _Loader(base_url, result)
    with loader.transport:
        loader.call("GET", "/_sim/healthz")  # open the keep-alive connection
        result.requests = result.errors = 0
        result.latencies_ms.clear()
        go.wait()
        result.started = time.perf_counter()
        stop_at = result.started + deadline_s
        for n in range(sessions):
            if time.perf_counter() > stop_at:
                break
            loader.session(n)
        result.finished = time.perf_counter()
    out.put(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=60_000, help="total requests (bound)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound")
    parser.add_argument("--loaders", type=int, default=3, help="load-generator processes")
    args = parser.parse_args()

    port = free_port()
    base_url = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "tavus_simulator", "--host", HOST, "--port", str(port)]
    with (
        tempfile.TemporaryDirectory(prefix="palisade-bench-") as tmp,
        running(command, clean_env(), Path(tmp), log := Path(tmp) / "simulator.log") as server,
        ProcessMonitor() as monitor,
    ):
        wait_ready(f"{base_url}/_sim/healthz", server, log)
        monitor.watch("simulator", server.pid)
        sessions_per_loader = max(args.requests // OPS_PER_SESSION // args.loaders, 1)
        ctx = mp.get_context("spawn")
        go = ctx.Event()
        out: mp.Queue[LoaderResult] = ctx.Queue()
        loaders = [
            ctx.Process(
                target=_loader_main,
                args=(base_url, sessions_per_loader, args.max_seconds, go, out),
            )
            for _ in range(args.loaders)
        ]
        for process in loaders:
            process.start()
        time.sleep(1.0)  # let the spawned interpreters finish importing before the clock starts
        cpu_before = monitor.cpu_seconds()
        wall_before = time.perf_counter()
        go.set()
        results = [out.get(timeout=args.max_seconds + 60) for _ in loaders]
        wall = time.perf_counter() - wall_before
        cpu_used = monitor.cpu_seconds() - cpu_before
        for process in loaders:
            process.join()
        log_tail = log.read_text()[-2000:]

    total = sum(r.requests for r in results)
    errors = sum(r.errors for r in results)
    window = max(r.finished for r in results) - min(r.started for r in results)
    latencies = [x for r in results for x in r.latencies_ms]
    p50, p90, p99 = (percentile(latencies, rank) for rank in (50, 90, 99))
    progress(
        f"simulator {base_url} (1 uvicorn worker), {args.loaders} loader processes "
        "(one keep-alive httpx.HTTPTransport each); per session: pal.create, conversation.create, "
        "conversation.get, conversation.end, pal.delete"
    )
    progress(f"requests:            {total} ({errors} errors) in {window:.2f} s")
    progress(f"throughput:          {total / window:,.0f} requests/s")
    progress(f"latency ms:          p50 {p50:.2f}  p90 {p90:.2f}  p99 {p99:.2f}")
    progress(
        f"simulator CPU:       {cpu_used:.2f} s over {wall:.2f} s wall "
        f"({100 * cpu_used / wall:.0f}% of one core)"
    )
    progress(f"per simulator CPU-s: {total / cpu_used:,.0f} requests")
    if errors:
        sys.stderr.write(log_tail)
        sys.exit(1)


if __name__ == "__main__":
    main()
