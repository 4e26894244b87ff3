"""The results file: every part of a run appears, labelled, with the machine and command."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.config import QUICK, Options
from bench.database import BenchDatabase
from bench.machine import Machine
from bench.results import RunFigures, render
from bench.scenarios.drain import DrainFigures
from bench.scenarios.history import HistoryFigures
from bench.scenarios.round_trips import RoundTripFigures
from bench.scenarios.starts import DIRECT, MODES, PALISADE, Measured, StartFigures
from bench.scenarios.webhooks import WebhookFigures
from bench.stats import summarise
from bench.workload import PROFILES


def measured(latency_ms: float, starts: int = 20, elapsed_s: float = 2.0) -> Measured:
    return Measured(latencies_ms=[latency_ms] * starts, elapsed_s=elapsed_s)


def run_figures(*, palisade_closed_rate: float = 100.0) -> RunFigures:
    starts = StartFigures()
    for mode in MODES:
        for profile in PROFILES:
            starts.measured[(mode, profile, DIRECT)] = measured(2.0)
            starts.measured[(mode, profile, PALISADE)] = measured(
                20.0, starts=int(palisade_closed_rate), elapsed_s=1.0
            )
    history = HistoryFigures(rows=1_000_000, insert_s=12.0)
    for profile in ("reuse", "ephemeral"):
        history.empty[profile] = measured(20.0)
        history.loaded[profile] = measured(30.0)
    return RunFigures(
        started_at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
        wall_s=600.0,
        command=".venv/bin/python -m bench.run --processes 2",
        machine=Machine("AMD EPYC", 2, 23 * 2**30, "CPython 3.11.7", "Linux 6.18", (1, 2, 3)),
        database=BenchDatabase("postgresql+asyncpg://x/y", "15.20", "server at h:5432, TCP"),
        options=Options(
            processes=2, clients=50, rate=10.0, sim_latency_ms=0.0, quick=False, sizes=QUICK
        ),
        starts=starts,
        webhooks=WebhookFigures(200, summarise([5.0] * 10, errors=0, elapsed_s=1.0), 1, 6.0, None),
        drain=DrainFigures(10_000, 2, 92.4, 0, 0, 86.2),
        history=history,
        round_trips=[
            RoundTripFigures(
                "reuse",
                100,
                {"ping": 4.0, "begin": 4.0, "statement": 13.0, "commit": 2.0, "rollback": 2.0},
                3,
                2,
            )
        ],
        peak_rss={"palisade-1": 114 * 2**20},
        chart_file="run.png",
    )


def test_names_the_machine_the_command_and_the_database() -> None:
    text = render(run_figures())
    assert "Command: `.venv/bin/python -m bench.run --processes 2`" in text
    assert "| CPU | AMD EPYC, 2 cores |" in text
    assert "| PostgreSQL | 15.20 (server at h:5432, TCP) |" in text


@pytest.mark.parametrize(
    "heading",
    [
        "### Closed loop, 50 clients (saturation: measures queueing)",
        "### Paced, 50 clients, 10 starts/s offered (per-start cost)",
        "### Latency Palisade adds",
        "## Webhook acknowledgement",
        "## Cleanup drain",
        "## Start latency with 1,000,000 historical sessions",
        "## Database round trips per start",
        "## Peak resident memory",
    ],
)
def test_has_a_section_for_every_part(heading: str) -> None:
    assert heading in render(run_figures())


def test_added_latency_is_a_difference_and_a_ratio_of_medians() -> None:
    assert "| reuse | paced | 2.00 | 20.0 | **18.0** | **10.00x** |" in render(run_figures())


def test_history_is_a_ratio_against_the_empty_database() -> None:
    assert "| reuse | 20.0 | 30.0 | **1.50x** |" in render(run_figures())


def test_round_trips_add_up_with_three_per_pre_ping() -> None:
    assert "| reuse | 100 | **33.0** | 4.0 x 3 |" in render(run_figures())


def test_warns_when_the_paced_rate_is_not_below_capacity() -> None:
    assert "not below capacity" not in render(run_figures(palisade_closed_rate=100.0))
    assert "not below capacity" in render(run_figures(palisade_closed_rate=8.0))


def test_a_run_with_errors_says_so() -> None:
    figures = run_figures()
    figures.starts.measured[("closed", "reuse", PALISADE)].errors = 2
    figures.starts.measured[("closed", "reuse", PALISADE)].first_error = "503 upstream"
    assert figures.failed
    assert "- closed/reuse/palisade: 2 errors, first: 503 upstream" in render(figures)
    assert not run_figures().failed
