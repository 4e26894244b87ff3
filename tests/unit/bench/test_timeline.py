"""bench.timeline: naming the steps of a start and splitting its time."""

from __future__ import annotations

from bench.timeline import report
from bench.timeline_serve import _statement_label

REUSE_START = [
    ("sql SELECT … FROM tenant_api_key", 1.0, 0.5),
    ("sql WITH locked", 2.0, 0.5),
    ("sql WITH live", 3.0, 0.5),
    ("commit", 4.0, 1.0),
    ("tavus POST /v2/conversations", 5.0, 2.0),
    ("sql WITH moved", 8.0, 1.0),
    ("response", 0.0, 10.0),
]


class TestStatementLabels:
    def test_a_statement_with_ctes_is_named_by_its_first(self) -> None:
        assert _statement_label("WITH moved AS (UPDATE session SET …) SELECT …") == (
            "sql WITH moved"
        )

    def test_a_select_is_named_by_its_table(self) -> None:
        label = _statement_label(
            "SELECT tenant_api_key.id, tenant_api_key.tenant_id\nFROM tenant_api_key WHERE …"
        )
        assert label == "sql SELECT … FROM tenant_api_key"

    def test_anything_else_by_its_first_words(self) -> None:
        assert _statement_label("UPDATE tenant_api_key SET last_used_at=$1") == (
            "sql UPDATE tenant_api_key SET"
        )


class TestReport:
    def test_splits_the_server_time_into_sql_commits_tavus_and_the_rest(self) -> None:
        text = report("reuse", [12.0], [REUSE_START])
        assert "| SQL statements | 2.50 ms |" in text
        assert "| commits | 1.00 ms |" in text
        assert "| Tavus calls | 2.00 ms |" in text
        assert "| the rest (Python) | 4.50 ms |" in text
        assert "client p50 12.00 ms, server p50 10.00 ms" in text

    def test_lists_the_steps_in_the_order_they_begin(self) -> None:
        text = report("reuse", [12.0], [REUSE_START])
        order = [line.split("|")[1].strip() for line in text.splitlines() if "| sql" in line]
        assert order == [
            "sql SELECT … FROM tenant_api_key",
            "sql WITH locked",
            "sql WITH live",
            "sql WITH moved",
        ]

    def test_keeps_a_repeated_statement_apart(self) -> None:
        ephemeral = [*REUSE_START, ("sql WITH moved", 9.5, 1.0)]
        assert "| sql WITH moved (2) | 9.50 ms | 1.00 ms |" in report("e", [1.0], [ephemeral])

    def test_leaves_out_a_step_most_starts_do_not_take(self) -> None:
        once = [*REUSE_START, ("sql UPDATE tenant_api_key SET", 1.6, 0.4)]
        text = report("reuse", [1.0], [once, REUSE_START, REUSE_START])
        assert "UPDATE tenant_api_key" not in text

    def test_marks_are_listed_and_take_no_time(self) -> None:
        marked = [("mark body received", 0.25, 0.0), *REUSE_START]
        text = report("reuse", [12.0], [marked])
        assert "| mark body received | 0.25 ms | 0.00 ms |" in text
        assert "| the rest (Python) | 4.50 ms |" in text
