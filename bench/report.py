"""What the suite writes: progress lines while it runs, then the markdown tables and
number formats of the results file."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence


def progress(line: str) -> None:
    """One line of progress on stdout, as soon as it is known."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured markdown table, one line per element."""
    width = len(headers)
    lines = [_row(headers), "|" + "---|" * width]
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row has {len(row)} cells, the table has {width} columns: {row!r}")
        lines.append(_row(row))
    return lines


def _row(cells: Sequence[str]) -> str:
    # A pipe inside a cell would split it in two.
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.2f}x"


def per_second(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.1f}/s"


def seconds(value: float | None) -> str:
    return "not reached" if value is None or math.isnan(value) else f"{value:,.1f} s"


def count(value: int) -> str:
    return f"{value:,}"


def mebibytes(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"
