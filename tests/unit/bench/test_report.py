"""The markdown table writer and the number formats of the results file."""

from __future__ import annotations

import math

import pytest

from bench.report import count, mebibytes, ms, per_second, seconds, table, times


class TestTable:
    def test_has_a_header_a_separator_and_one_line_per_row(self) -> None:
        assert table(["profile", "p50 ms"], [["reuse", "1.5"], ["ephemeral", "2.5"]]) == [
            "| profile | p50 ms |",
            "|---|---|",
            "| reuse | 1.5 |",
            "| ephemeral | 2.5 |",
        ]

    def test_without_rows_is_only_its_header(self) -> None:
        assert table(["a", "b", "c"], []) == ["| a | b | c |", "|---|---|---|"]

    def test_escapes_a_pipe_inside_a_cell(self) -> None:
        assert table(["command"], [["a | b"]])[2] == "| a \\| b |"

    def test_refuses_a_row_of_another_width(self) -> None:
        with pytest.raises(ValueError, match="2 columns"):
            table(["a", "b"], [["only one"]])


class TestFormats:
    @pytest.mark.parametrize(
        ("value", "text"),
        [(0.4321, "0.43"), (9.994, "9.99"), (12.345, "12.3"), (2080.0, "2,080.0"), (-3.0, "-3.00")],
    )
    def test_milliseconds_keep_three_significant_figures_or_more(
        self, value: float, text: str
    ) -> None:
        assert ms(value) == text

    def test_a_missing_figure_reads_not_available(self) -> None:
        assert [ms(math.nan), times(math.nan), per_second(math.nan)] == ["n/a"] * 3

    def test_other_units(self) -> None:
        assert times(90.0) == "90.00x"
        assert per_second(1816.66) == "1,816.7/s"
        assert seconds(92.42) == "92.4 s"
        assert seconds(None) == "not reached"
        assert count(10_000) == "10,000"
        assert mebibytes(114 * 2**20) == "114 MiB"
