"""The tracing cost report: traced against untraced, round by round."""

from __future__ import annotations

from bench.tracing import OFF, ON, PROFILES, report


def test_the_ratio_is_the_median_of_each_rounds_ratio() -> None:
    latencies = {(profile, which): [10.0] * 10 for profile in PROFILES for which in (OFF, ON)}
    # Rounds where the machine was slow for both sets cancel out: 1.1, 1.2 and 1.0.
    round_p50s = {
        (profile, which): values
        for profile in PROFILES
        for which, values in ((OFF, [10.0, 20.0, 10.0]), (ON, [11.0, 24.0, 10.0]))
    }
    cpu_ms = dict.fromkeys(latencies, 5.0)
    table = report(latencies, round_p50s, cpu_ms, errors=0).splitlines()
    on = next(line for line in table if line.startswith("| reuse | on |"))
    off = next(line for line in table if line.startswith("| reuse | off |"))
    assert "| 1.100 |" in on
    assert "| 10.00 ms | 10.00 ms |  | 5.00 ms |" in off
    assert not any("failed" in line for line in table)


def test_failed_starts_are_reported() -> None:
    keys = [(profile, which) for profile in PROFILES for which in (OFF, ON)]
    table = report(
        {key: [1.0, 1.0] for key in keys},
        {key: [1.0] for key in keys},
        dict.fromkeys(keys, 1.0),
        errors=2,
    )
    assert "**2 starts failed.**" in table
