"""The floor's report: each service's figures against the direct path's."""

from __future__ import annotations

from bench.floor import report


def test_added_latency_is_measured_against_the_direct_path() -> None:
    latencies = {
        "direct": [2.0] * 10,
        "floor": [5.0] * 10,
        "palisade": [7.5] * 10,
    }
    table = report(latencies, {"floor": 2.5, "palisade": 5.0}, errors=0).splitlines()
    floor = next(line for line in table if line.startswith("| floor |"))
    palisade = next(line for line in table if line.startswith("| palisade |"))
    assert "| 3.00 ms | 3.00 ms | 2.50 ms |" in floor
    assert "| 5.50 ms | 5.50 ms | 5.00 ms |" in palisade
    assert not any("failed" in line for line in table)


def test_failed_starts_are_reported() -> None:
    latencies = {"direct": [1.0, 1.0], "floor": [1.0, 1.0], "palisade": [1.0, 1.0]}
    assert "**3 starts failed.**" in report(latencies, {}, errors=3)
