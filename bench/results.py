"""The results file: every figure of a run as markdown, with the machine and the command."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bench.config import Options
from bench.database import BenchDatabase
from bench.machine import Machine
from bench.report import count, mebibytes, ms, per_second, seconds, table, times
from bench.scenarios.drain import DrainFigures
from bench.scenarios.history import HistoryFigures
from bench.scenarios.round_trips import RoundTripFigures
from bench.scenarios.starts import CLOSED, DIRECT, MODES, PACED, PALISADE, StartFigures
from bench.scenarios.webhooks import WebhookFigures
from bench.stats import percentiles
from bench.workload import PROFILES


@dataclass
class RunFigures:
    started_at: datetime
    wall_s: float
    command: str
    machine: Machine
    database: BenchDatabase
    options: Options
    starts: StartFigures
    webhooks: WebhookFigures
    drain: DrainFigures
    history: HistoryFigures
    round_trips: list[RoundTripFigures]
    peak_rss: dict[str, int]
    chart_file: str

    @property
    def failed(self) -> bool:
        return bool(
            self.starts.errors
            or self.webhooks.summary.errors
            or self.drain.failed
            or self.history.errors
        )


def render(run: RunFigures) -> str:
    sections = [
        _heading(run),
        _starts(run),
        _webhooks(run.webhooks),
        _drain(run.drain),
        _history(run.history),
        _round_trips(run.round_trips),
        _memory(run.peak_rss),
        ["## Latency distributions", "", f"![Latency distributions]({run.chart_file})"],
        _errors(run),
    ]
    return "\n".join(line for section in sections for line in [*section, ""]).rstrip() + "\n"


def _heading(run: RunFigures) -> list[str]:
    m, o = run.machine, run.options
    load = " / ".join(f"{v:.2f}" for v in m.load_average)
    size = "quick (small sizes: checks that every part works; figures not meaningful)"
    return [
        f"# Palisade benchmark, {run.started_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{run.command}`",
        "",
        *table(
            ["machine", ""],
            [
                ["CPU", f"{m.cpu_model}, {m.cores} cores"],
                ["memory", f"{m.memory_bytes / 2**30:.1f} GiB"],
                ["Python", m.python],
                ["PostgreSQL", f"{run.database.server_version} ({run.database.where})"],
                ["OS", m.kernel],
                ["load average at start (1 / 5 / 15 min)", load],
            ],
        ),
        "",
        f"{o.processes} Palisade process(es) on one database; the simulator adds "
        f"{o.sim_latency_ms:g} ms to every Tavus operation; {o.clients} clients; paced "
        f"phases offer {o.rate:g} starts/s; {size if o.quick else 'full sizes'}; "
        f"{run.wall_s:.0f} s in all.",
    ]


def _start_table(figures: StartFigures, mode: str) -> list[str]:
    rate_header = "sessions/s" if mode == CLOSED else "achieved starts/s"
    headers = ["profile", "path", "starts", "errors", rate_header, "p50 ms", "p95 ms", "p99 ms"]
    headers += ["p50 of each phase", "Palisade CPU ms/start"]
    if mode == PACED:
        headers.append("schedule lag p99 ms")
    lines = []
    for profile in PROFILES:
        for path in (DIRECT, PALISADE):
            m = figures.get(mode, profile, path)
            s = m.summary()
            row = [
                profile,
                "Tavus calls, direct" if path == DIRECT else "`POST /sessions`",
                count(s.count),
                count(s.errors),
                per_second(s.rate),
                ms(s.p50),
                ms(s.p95),
                ms(s.p99),
                " / ".join(ms(v) for v in m.phase_p50s),
                ms(m.palisade_cpu_ms_per_start) if path == PALISADE else "",
            ]
            if mode == PACED:
                row.append(ms(percentiles(m.lag_ms)[2]))
            lines.append(row)
    return table(headers, lines)


def _starts(run: RunFigures) -> list[str]:
    figures, o = run.starts, run.options
    added_rows = []
    for mode in MODES:
        for profile in PROFILES:
            a = figures.added(mode, profile)
            direct = figures.get(mode, profile, DIRECT).summary()
            through = figures.get(mode, profile, PALISADE).summary()
            added_rows.append(
                [
                    profile,
                    "closed loop" if mode == CLOSED else "paced",
                    ms(direct.p50),
                    ms(through.p50),
                    f"**{ms(a.p50_ms)}**",
                    f"**{times(a.p50_ratio)}**",
                    ms(direct.p99),
                    ms(through.p99),
                    ms(a.p99_ms),
                    times(a.p99_ratio),
                ]
            )
    saturated = [
        p
        for p in PROFILES
        if figures.get(CLOSED, p, PALISADE).summary().rate <= o.rate
        and figures.get(CLOSED, p, PALISADE).latencies_ms
    ]
    note = (
        [
            "",
            f"**The offered rate is not below capacity** for {', '.join(saturated)}: the "
            "closed loop did not exceed it, so those paced figures measure queueing too.",
        ]
        if saturated
        else []
    )
    return [
        "## Session start",
        "",
        f"### Closed loop, {o.clients} clients (saturation: measures queueing)",
        "",
        "Each client sends its next start as soon as the last is answered.",
        "",
        *_start_table(figures, CLOSED),
        "",
        f"### Paced, {o.clients} clients, {o.rate:g} starts/s offered (per-start cost)",
        "",
        "Starts leave on a fixed schedule, below capacity, whichever client is free.",
        "",
        *_start_table(figures, PACED),
        *note,
        "",
        "### Latency Palisade adds",
        "",
        "Palisade's percentile minus (and divided by) the same percentile of the same "
        "Tavus calls made directly, by the same client, against the same simulator.",
        "",
        *table(
            [
                "profile",
                "mode",
                "direct p50 ms",
                "Palisade p50 ms",
                "added p50 ms",
                "p50 ratio",
                "direct p99 ms",
                "Palisade p99 ms",
                "added p99 ms",
                "p99 ratio",
            ],
            added_rows,
        ),
    ]


def _webhooks(w: WebhookFigures) -> list[str]:
    s = w.summary
    return [
        "## Webhook acknowledgement",
        "",
        *table(
            [
                "sessions",
                "events acknowledged",
                "as duplicates",
                "errors",
                "events/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "Palisade CPU ms/event",
            ],
            [
                [
                    count(w.sessions),
                    count(s.count),
                    count(w.duplicates_answered),
                    count(s.errors),
                    per_second(s.rate),
                    ms(s.p50),
                    ms(s.p95),
                    ms(s.p99),
                    ms(w.palisade_cpu_ms_per_event),
                ]
            ],
        ),
    ]


def _drain(d: DrainFigures) -> list[str]:
    return [
        "## Cleanup drain",
        "",
        *table(
            [
                "ended sessions",
                "Palisade processes",
                "drained in",
                "deletes/s",
                "PALs left",
                "PALs deleted more than once",
                "Palisade CPU",
            ],
            [
                [
                    count(d.sessions),
                    count(d.processes),
                    seconds(d.drained_s),
                    per_second(d.deletes_per_second),
                    count(d.pals_left),
                    count(d.deleted_more_than_once),
                    seconds(d.palisade_cpu_s),
                ]
            ],
        ),
    ]


def _history(h: HistoryFigures) -> list[str]:
    rows = []
    for profile in h.empty:
        empty, loaded = h.empty[profile].summary(), h.loaded[profile].summary()
        rows.append(
            [
                profile,
                ms(empty.p50),
                ms(loaded.p50),
                f"**{times(h.p50_ratio(profile))}**",
                ms(empty.p99),
                ms(loaded.p99),
                times(h.p99_ratio(profile)),
            ]
        )
    return [
        f"## Start latency with {h.rows:,} historical sessions",
        "",
        f"Paced starts on an empty database, then with {h.rows:,} terminal sessions "
        f"(inserted in {h.insert_s:.1f} s).",
        "",
        *table(
            [
                "profile",
                "p50 ms, empty",
                "p50 ms, with history",
                "p50 ratio",
                "p99 ms, empty",
                "p99 ms, with history",
                "p99 ratio",
            ],
            rows,
        ),
    ]


def _round_trips(figures: list[RoundTripFigures]) -> list[str]:
    rows = []
    for f in figures:
        p = f.per_start
        rows.append(
            [
                f.profile,
                count(f.starts),
                f"**{f.round_trips_per_start:.1f}**",
                f"{p['ping']:.1f} x {f.ping_round_trips}",
                f"{p['begin']:.1f}",
                f"{p['statement']:.1f}",
                f"{p['commit']:.1f}",
                f"{p['rollback']:.1f}",
                count(f.connects),
            ]
        )
    return [
        "## Database round trips per start",
        "",
        "Sequential starts with an `Idempotency-Key`, averaged.",
        "",
        *table(
            [
                "profile",
                "starts",
                "round trips per start",
                "pre-pings",
                "BEGIN",
                "statements",
                "COMMIT",
                "ROLLBACK",
                "new connections (all starts)",
            ],
            rows,
        ),
    ]


def _memory(peak_rss: dict[str, int]) -> list[str]:
    return [
        "## Peak resident memory",
        "",
        *table(["process", "peak RSS"], [[n, mebibytes(v)] for n, v in peak_rss.items()]),
    ]


def _errors(run: RunFigures) -> list[str]:
    first = [
        f"- {mode}/{profile}/{path}: {m.errors} errors, first: {m.first_error}"
        for (mode, profile, path), m in run.starts.measured.items()
        if m.errors
    ]
    if run.webhooks.summary.errors:
        first.append(
            f"- webhooks: {run.webhooks.summary.errors} errors, first: {run.webhooks.first_error}"
        )
    for label, measured in (("empty", run.history.empty), ("history", run.history.loaded)):
        first += [
            f"- {label}/{profile}: {m.errors} errors, first: {m.first_error}"
            for profile, m in measured.items()
            if m.errors
        ]
    return ["## Errors", "", *first] if first else []
