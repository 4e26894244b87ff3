"""Several worker processes, one exposition: counters add up, database gauges do not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from app.observability.metrics import MULTIPROCESS_ENV, multiprocess_directory

WORKER = textwrap.dedent(
    """
    import sys
    from app.observability import metrics

    # What one worker does: a started session, a reconciler pass, a scrape's refresh.
    metrics.SESSIONS_STARTED.labels("acme", "coach", "reuse").inc()
    metrics.RECONCILER_LAST_SUCCESS.set(float(sys.argv[1]))
    metrics.SESSIONS.labels("active").set(3)
    metrics.CLEANUP_BACKLOG.set(float(sys.argv[2]))
    """
)
RENDER = (
    "import sys; from app.observability import metrics; sys.stdout.write(metrics.render().decode())"
)


def run(code: str, directory: str, *args: str) -> str:
    env = {**os.environ, MULTIPROCESS_ENV: directory}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_workers_figures_are_combined_without_multiplying_database_gauges(
    tmp_path: Path,
) -> None:
    directory = str(tmp_path)
    run(WORKER, directory, "1000", "2")
    # The later refresh wins: the backlog is what the database said last.
    run(WORKER, directory, "2000", "5")
    exposed = values(run(RENDER, directory))
    started = (
        "palisade_sessions_started_total",
        (("profile", "coach"), ("strategy", "reuse"), ("tenant", "acme")),
    )
    assert exposed[started] == 2
    assert exposed[("palisade_reconciler_last_success_timestamp_seconds", ())] == 2000
    assert exposed[("palisade_sessions", (("status", "active"),))] == 3
    assert exposed[("palisade_cleanup_backlog", ())] == 5


def test_the_directory_is_fresh_set_for_the_workers_and_removed_after() -> None:
    before = os.environ.get(MULTIPROCESS_ENV)
    with multiprocess_directory() as directory:
        assert os.environ[MULTIPROCESS_ENV] == directory
        assert Path(directory).is_dir()
        assert not any(Path(directory).iterdir())
        (Path(directory) / "counter_1.db").write_bytes(b"x")
    assert os.environ.get(MULTIPROCESS_ENV) == before
    assert not Path(directory).exists()
