from __future__ import annotations

from typing import Any

from bench.console import STRICT_FROM_SESSIONS, Page, failures, read


def plan(node: dict[str, Any], ms: float = 1.5) -> dict[str, Any]:
    return {"Plan": node, "Execution Time": ms}


def test_a_plan_names_its_indexes_and_its_scans_of_big_tables() -> None:
    page = Page("p", "/console")
    read(
        plan(
            {
                "Node Type": "Nested Loop",
                "Plans": [
                    {"Node Type": "Index Scan", "Index Name": "ix_session_created"},
                    {"Node Type": "Seq Scan", "Relation Name": "tenant"},
                    {
                        "Node Type": "Hash",
                        "Plans": [{"Node Type": "Seq Scan", "Relation Name": "session_event"}],
                    },
                ],
            }
        ),
        page,
    )
    read(plan({"Node Type": "Index Only Scan", "Index Name": "pk_session"}, ms=0.5), page)
    assert page.indexes == {"ix_session_created", "pk_session"}
    assert page.seq_scans == {"session_event"}  # the small tenant table is fine
    assert page.sql_ms == 2.0


def test_pages_fail_over_budget_or_scanning_only_at_size() -> None:
    quick = Page("quick", "/a", times_ms=[5.0, 6.0, 7.0])
    slow = Page("slow", "/b", times_ms=[150.0, 250.0, 260.0])
    scanning = Page("scanning", "/c", times_ms=[1.0, 2.0], seq_scans={"session"})
    measured = [quick, slow, scanning]
    assert failures(measured, 200, STRICT_FROM_SESSIONS) == ["slow", "scanning"]
    assert failures(measured, 200, STRICT_FROM_SESSIONS - 1) == []
