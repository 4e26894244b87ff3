"""What each console page shows, against a live stack (Palisade and the simulator)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.console import artifacts as console_artifacts
from app.console import services
from app.db.models import SweepRun
from app.db.repositories.sweeps import SweepRunRepository
from app.observability.redaction import REDACTED
from tavus_simulator import ErrorFault
from tests.conftest import PalisadeFactory
from tests.integration.api.test_artifacts import post_event
from tests.integration.api.test_sessions import setup_tenant, start
from tests.integration.api.test_warm_pool import pooled_profile
from tests.integration.api.test_webhooks import events, wait_status
from tests.support.console import HTML, rows, sign_in, tables
from tests.support.stack import PAL_TEMPLATE, Palisade, SimulatorHandle
from tests.support.wait import until

Console = Callable[[Palisade], Awaitable[httpx.AsyncClient]]
LLM_KEY = "sk-console-must-never-show-4f1d"


@pytest.fixture
async def console() -> AsyncIterator[Console]:
    """A browser-like client of a Palisade, signed in to its console."""
    clients: list[httpx.AsyncClient] = []

    async def open_for(palisade: Palisade) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=palisade.url, timeout=30)
        clients.append(client)
        await sign_in(client)
        return client

    yield open_for
    for client in clients:
        await client.aclose()


async def page(client: httpx.AsyncClient, path: str, status: int = 200) -> str:
    response = await client.get(path, headers=HTML)
    assert response.status_code == status, response.text
    return response.text


def rows_of_transcript(html: str) -> list[str]:
    """The transcript's turns as the page lists them, "role: content" each."""
    listed = html.split('<ol id="transcript">', 1)[1].split("</ol>", 1)[0]
    return [
        item.split("</li>", 1)[0].replace("<strong>", "").replace("</strong>", "")
        for item in listed.split("<li>")[1:]
    ]


async def sql(palisade: Palisade, statement: str, **values: Any) -> None:
    async with palisade.runtime.engine.begin() as connection:
        await connection.execute(text(statement), values)


class TestOverview:
    async def test_each_tenant_shows_live_sessions_of_its_cap_starts_and_failures(
        self, palisade: Palisade, simulator: SimulatorHandle, console: Console
    ) -> None:
        key, _ = await setup_tenant(palisade, cap=3)
        await setup_tenant(palisade, tenant_id="quiet", cap=5)
        for ref in ("u1", "u2"):
            assert (await start(palisade, key, {"external_ref": ref})).status_code == 201
        simulator.sim.add_fault("conversation.create", ErrorFault(status=400, times=1))
        assert (await start(palisade, key, {})).status_code == 502

        client = await console(palisade)
        overview = await page(client, "/console")
        by_tenant = {row[0].split()[0]: row for row in rows(overview, "tenants")}
        assert by_tenant["acme"][1:5] == ["2 of 3", "3", "1 failed", "0"]
        assert by_tenant["quiet"][1:5] == ["0 of 5", "0", "0", "0"]

    async def test_a_tenant_at_its_cap_says_so_in_words(
        self, palisade: Palisade, console: Console
    ) -> None:
        key, _ = await setup_tenant(palisade, cap=1)
        await start(palisade, key, {})
        overview = await page(await console(palisade), "/console")
        [acme] = rows(overview, "tenants")
        assert acme[1] == "1 of 1 at cap"

    async def test_warm_pools_show_ready_of_size(
        self, palisade_factory: PalisadeFactory, console: Console
    ) -> None:
        # No background work: the pool stays empty, so the figures are fixed.
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        await palisade.create_tenant(
            {
                "id": "acme",
                "name": "Acme",
                "profiles": {"voices": pooled_profile(size=2)},
                "default_profile": "voices",
            }
        )
        overview = await page(await console(palisade), "/console")
        assert rows(overview, "pools") == [["acme", "voices", "template", "0 of 2 short", "0", "0"]]

    async def test_open_and_unconfirmed_shutdown_claims_are_listed(
        self, palisade_factory: PalisadeFactory, console: Console
    ) -> None:
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        key, _ = await setup_tenant(palisade)
        claimed = (await start(palisade, key, {})).json()["id"]
        contradicted = (await start(palisade, key, {})).json()["id"]
        await sql(
            palisade,
            "UPDATE session SET shutdown_claimed_at = now() WHERE id = :id",
            id=uuid.UUID(claimed),
        )
        await sql(
            palisade,
            "INSERT INTO session_event (session_id, kind, type, payload) "
            "VALUES (:id, 'tavus', 'shutdown.unconfirmed', '{\"tavus_status\": \"active\"}')",
            id=uuid.UUID(contradicted),
        )
        overview = await page(await console(palisade), "/console")
        [open_claim] = rows(overview, "open-claims")
        assert open_claim[0] == claimed
        assert open_claim[3] == "active"
        [unconfirmed] = rows(overview, "unconfirmed")
        assert unconfirmed[0] == contradicted
        assert unconfirmed[2] == "active"
        assert f'href="/console/sessions/{claimed}"' in overview

    async def test_the_oldest_pending_delivery_is_shown(
        self, palisade_factory: PalisadeFactory, console: Console
    ) -> None:
        # Retried an hour apart: the delivery stays pending after its first failure.
        palisade = await palisade_factory(PALISADE_WEBHOOK_RETRY_SECONDS=[3600])
        key, _ = await setup_tenant(palisade)
        client = await console(palisade)
        assert "No delivery is pending" in await page(client, "/console")
        await palisade.api.create_webhook_endpoint(
            "acme", {"url": "http://127.0.0.1:9/refused", "events": ["session.active"]}
        )
        await start(palisade, key, {"profile": "coach"})

        async def attempted() -> str | None:
            html = await page(client, "/console")
            return html if "after 1 attempts" in html else None

        overview = await until(attempted, message="the failed first attempt")
        assert "session.active" in overview
        assert "does not send webhooks" not in overview


class TestSessions:
    async def test_filters_combine_and_find_a_session_by_external_ref(
        self, palisade: Palisade, console: Console
    ) -> None:
        key_a, _ = await setup_tenant(palisade)
        key_b, _ = await setup_tenant(palisade, tenant_id="beta")
        wanted = (await start(palisade, key_a, {"external_ref": "user-7"})).json()
        await start(palisade, key_a, {"external_ref": "user-8", "profile": "voices"})
        other = (await start(palisade, key_b, {"external_ref": "user-7"})).json()
        client = await console(palisade)

        def ids(html: str) -> list[str]:
            return [row[1] for row in rows(html, "sessions") if len(row) > 1]

        assert len(ids(await page(client, "/console/sessions"))) == 3
        found = await page(client, "/console/sessions?external_ref=user-7&tenant=&status=")
        assert ids(found) == [other["id"], wanted["id"]]
        narrowed = await page(client, "/console/sessions?external_ref=user-7&tenant=acme")
        assert ids(narrowed) == [wanted["id"]]
        [row] = rows(narrowed, "sessions")
        assert row[2:8] == ["acme", "coach", "reuse", "active", "not_needed", "user-7"]
        ephemeral = await page(client, "/console/sessions?strategy=ephemeral")
        assert [row[7] for row in rows(ephemeral, "sessions")] == ["user-8"]
        assert ids(await page(client, "/console/sessions?status=ended")) == []
        assert "No session matches." in await page(client, "/console/sessions?status=failed")

    async def test_pages_follow_one_another_newest_first(
        self, palisade: Palisade, console: Console, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(services, "SESSIONS_PER_PAGE", 2)
        key, _ = await setup_tenant(palisade)
        started = [(await start(palisade, key, {"external_ref": f"u{i}"})).json() for i in range(5)]
        client = await console(palisade)
        seen: list[str] = []
        path: str | None = "/console/sessions?tenant=acme"
        while path is not None:
            html = await page(client, path)
            seen += [row[1] for row in rows(html, "sessions")]
            nxt = [
                a for a in html.split('"') if a.startswith("/console/sessions?") and "cursor=" in a
            ]
            path = nxt[0].replace("&amp;", "&") if nxt else None
            if path is not None:
                assert "tenant=acme" in path  # the filters go along
        assert seen == [s["id"] for s in reversed(started)]

    @pytest.mark.parametrize(
        ("query", "status", "code"),
        [
            ("status=nope", 422, "validation_error"),
            ("strategy=auto", 422, "validation_error"),
            ("external_ref=" + "x" * 201, 422, "validation_error"),
            ("external_ref=a%00b", 422, "validation_error"),
            ("tenant=a%00b", 422, "validation_error"),
            ("cursor=%%%", 400, "invalid_cursor"),
            ("cursor=WyJ4Il0", 400, "invalid_cursor"),
        ],
    )
    async def test_bad_filters_are_a_clear_4xx(
        self, palisade: Palisade, console: Console, query: str, status: int, code: str
    ) -> None:
        client = await console(palisade)
        html = await page(client, f"/console/sessions?{query}", status)
        assert f'<code id="problem-code">{code}</code>' in html
        problem = await client.get(f"/console/sessions?{query}")
        assert problem.status_code == status
        assert problem.json()["code"] == code


class TestSessionPage:
    async def test_it_shows_the_timeline_tavus_ids_and_a_redacted_pal_body(
        self, palisade: Palisade, console: Console
    ) -> None:
        template = copy.deepcopy(PAL_TEMPLATE)
        template["layers"]["llm"] = {"model": "custom-llm", "api_key": LLM_KEY}
        key = await palisade.create_tenant(
            {
                "id": "acme",
                "name": "Acme",
                "profiles": {"voices": {"strategy": "ephemeral", "pal_template": template}},
            }
        )
        session = (await start(palisade, key, {"profile": "voices"})).json()
        html = await page(await console(palisade), f"/console/sessions/{session['id']}")
        assert LLM_KEY not in html
        assert REDACTED in html
        for tavus_id in (session["pal_id"], session["conversation_id"]):
            assert f"<code>{tavus_id}</code>" in html
        timeline = rows(html, "timeline-events")
        logged = await events(palisade, key, session["id"])
        assert [row[3] for row in timeline] == [event["type"] for event in logged]
        transitions = [row[4] for row in timeline if row[4] != "-"]
        assert transitions == ["- → admitted", "admitted → pal_created", "pal_created → active"]
        assert "End session" in html

    @pytest.mark.parametrize("session_id", ["not-a-uuid", str(uuid.uuid4())])
    async def test_an_unknown_session_is_404(
        self, palisade: Palisade, console: Console, session_id: str
    ) -> None:
        html = await page(await console(palisade), f"/console/sessions/{session_id}", 404)
        assert '<code id="problem-code">session_not_found</code>' in html

    async def test_a_forged_timeline_cursor_is_400(
        self, palisade: Palisade, console: Console
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {})).json()
        html = await page(
            await console(palisade), f"/console/sessions/{session['id']}?after=WzAuNV0", 400
        )
        assert "invalid_cursor" in html

    async def test_a_long_timeline_comes_a_page_at_a_time(
        self, palisade: Palisade, console: Console, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(services, "EVENTS_PER_PAGE", 2)
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        client = await console(palisade)
        first = await page(client, f"/console/sessions/{session['id']}")
        assert len(rows(first, "timeline-events")) == 2
        [later] = [a for a in first.split('"') if "?after=" in a]
        second = await page(client, later)
        logged = await events(palisade, key, session["id"])
        assert [row[3] for row in rows(second, "timeline-events")] == [
            event["type"] for event in logged[2:4]
        ]

    async def test_before_any_artifact_the_page_says_where_they_will_come_from(
        self, palisade: Palisade, console: Console
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {})).json()
        html = await page(await console(palisade), f"/console/sessions/{session['id']}")
        assert "Tavus has sent no transcript" in html
        assert "application.transcription_ready" in html

    async def test_hostile_transcript_text_is_escaped_and_a_non_https_location_is_no_link(
        self, palisade: Palisade, console: Console
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {})).json()
        await post_event(
            palisade,
            session,
            "application.transcription_ready",
            transcript=[
                {"role": "system", "content": "prompt-kept-out-3b9e"},
                {"role": "assistant", "content": "<script>alert(1)</script>"},
                {"role": "user", "content": "hello there"},
            ],
        )
        await post_event(
            palisade,
            session,
            "application.recording_ready",
            storage_uri="javascript:alert(1)",
            duration=12,
        )
        html = await page(await console(palisade), f"/console/sessions/{session['id']}")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert(1)" not in html
        # The timeline holds the raw event, system prompt included; the transcript not.
        assert rows_of_transcript(html) == [
            "assistant: &lt;script&gt;alert(1)&lt;/script&gt;",
            "user: hello there",
        ]
        # The session is live: the transcript cannot be the whole call yet.
        assert "Transcript (incomplete)" in html
        assert 'href="javascript:' not in html
        assert "javascript:alert(1)" in html

    async def test_a_long_transcript_shows_its_first_turns_and_a_recording_link(
        self, palisade: Palisade, console: Console, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(console_artifacts, "TRANSCRIPT_LINES_SHOWN", 2)
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {})).json()
        turns = [{"role": "user", "content": f"turn-{n}"} for n in range(5)]
        await post_event(palisade, session, "application.transcription_ready", transcript=turns)
        await post_event(
            palisade,
            session,
            "application.recording_ready",
            storage_uri="https://recordings.example/acme/r1.mp4",
            storage_provider="s3",
            duration=61.5,
        )
        await post_event(
            palisade, session, "application.perception_analysis", analysis="**calm** user"
        )
        html = await page(await console(palisade), f"/console/sessions/{session['id']}")
        assert [line.split(": ", 1)[1] for line in rows_of_transcript(html)] == [
            "turn-0",
            "turn-1",
        ]
        assert "3 more turns" in html
        assert 'href="https://recordings.example/acme/r1.mp4"' in html
        assert "61.5" in html
        assert "**calm** user" in html


class TestEnd:
    async def test_end_goes_through_the_api_service_and_the_session_ends(
        self, palisade: Palisade, simulator: SimulatorHandle, console: Console
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {})).json()
        client = await console(palisade)
        html = await page(client, f"/console/sessions/{session['id']}")
        token = html.split('name="csrf_token" value="', 2)[2].split('"', 1)[0]
        response = await client.post(
            f"/console/sessions/{session['id']}/end", data={"csrf_token": token}, headers=HTML
        )
        assert response.status_code == 303
        assert response.headers["location"].endswith("?notice=end-requested")
        ended = await wait_status(palisade, key, session["id"], "ended")
        assert ended["end_reason"] == "ended_by_operator"
        assert simulator.sim.conversation(session["conversation_id"]).status == "ended"
        logged = [e["type"] for e in await events(palisade, key, session["id"])]
        assert "session.ending" in logged
        after = await page(client, response.headers["location"])
        assert "The end was asked for" in after

    async def test_a_forged_end_changes_nothing(
        self, palisade: Palisade, simulator: SimulatorHandle, console: Console
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {})).json()
        client = await console(palisade)
        response = await client.post(
            f"/console/sessions/{session['id']}/end", data={"csrf_token": "forged"}, headers=HTML
        )
        assert response.status_code == 403
        assert simulator.sim.conversation(session["conversation_id"]).status == "active"
        assert (await palisade.as_tenant(key, "GET", f"/sessions/{session['id']}")).json()[
            "status"
        ] == "active"

    async def test_a_session_still_being_created_is_not_ended(
        self, palisade_factory: PalisadeFactory, console: Console
    ) -> None:
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {})).json()
        await sql(
            palisade,
            "UPDATE session SET state = 'admitted' WHERE id = :id",
            id=uuid.UUID(session["id"]),
        )
        client = await console(palisade)
        token = (await page(client, "/console")).split('name="csrf_token" value="', 1)[1]
        token = token.split('"', 1)[0]
        response = await client.post(
            f"/console/sessions/{session['id']}/end", data={"csrf_token": token}, headers=HTML
        )
        assert response.headers["location"].endswith("?notice=not-endable")
        html = await page(client, response.headers["location"])
        assert "still being created" in html
        assert "End session" not in html


class TestCleanup:
    async def test_pals_owed_deletion_show_attempts_next_try_and_last_failure(
        self, palisade_factory: PalisadeFactory, console: Console
    ) -> None:
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        await sql(
            palisade,
            "UPDATE session SET state = 'ended', ended_at = now(), attempts = 3, "
            "next_check_at = now() + interval '1 hour' WHERE id = :id",
            id=uuid.UUID(session["id"]),
        )
        await sql(
            palisade,
            "INSERT INTO session_event (session_id, kind, type, payload) VALUES (:id, 'tavus', "
            '\'cleanup.retry\', \'{"error": "TavusServerError", "status": 503}\')',
            id=uuid.UUID(session["id"]),
        )
        html = await page(await console(palisade), "/console/cleanup")
        [line] = rows(html, "pending")
        assert line[0] == session["id"]
        assert line[2] == session["pal_id"]
        assert line[4] == "3 retrying"
        assert line[5].startswith("in ")
        assert line[6].startswith("TavusServerError (HTTP 503)")

    async def test_nothing_owed_says_so_in_words(
        self, palisade: Palisade, console: Console
    ) -> None:
        html = await page(await console(palisade), "/console/cleanup")
        assert "none owed" in html
        assert "No sweep has run yet." in html

    async def test_the_last_sweeps_are_listed_with_what_they_did(
        self, palisade: Palisade, console: Console
    ) -> None:
        now = datetime.now(UTC)
        async with palisade.runtime.sessionmaker.begin() as db:
            await SweepRunRepository(db).add(
                SweepRun(
                    started_at=now - timedelta(seconds=3),
                    finished_at=now,
                    accounts=2,
                    pals_seen=40,
                    conversations_seen=5,
                    removed=1,
                    failed=1,
                    actions=[
                        {
                            "kind": "pal",
                            "object_id": "p-gone",
                            "session_id": None,
                            "decision": "delete",
                            "done": True,
                            "error": None,
                            "name": None,
                        },
                        {
                            "kind": "conversation",
                            "object_id": "c-stuck",
                            "session_id": None,
                            "decision": "end",
                            "done": False,
                            "error": "HTTP 500",
                            "name": None,
                        },
                    ],
                    errors=["acme: TavusUnavailable: try later"],
                )
            )
        html = await page(await console(palisade), "/console/cleanup")
        [run] = rows(html, "sweeps")
        assert run[1:5] == ["3.0 s", "2", "40", "5"]
        assert run[5].startswith("problems 1 removed, 1 failed, 1 account unreadable")
        assert "delete pal p-gone: done" in run[5]
        assert "end conversation c-stuck: failed (HTTP 500)" in run[5]
        assert "acme: TavusUnavailable" in run[5]


class TestDeliveries:
    async def test_the_page_lists_them_and_a_retry_sends_again(
        self, palisade_factory: PalisadeFactory, console: Console
    ) -> None:
        palisade = await palisade_factory(PALISADE_WEBHOOK_RETRY_SECONDS=[3600])
        key, _ = await setup_tenant(palisade)
        client = await console(palisade)
        await palisade.api.create_webhook_endpoint(
            "acme", {"url": "http://127.0.0.1:9/refused", "events": ["session.active"]}
        )
        session = (await start(palisade, key, {"profile": "coach"})).json()

        async def listed() -> str | None:
            html = await page(client, "/console/deliveries?status=pending")
            found = rows(html, "deliveries")
            return html if found and found[0][5] == "1" else None

        html = await until(listed, message="a pending delivery after one attempt")
        [row] = rows(html, "deliveries")
        assert row[1:5] == ["acme", "session.active", session["id"], "pending"]
        assert "ConnectError" in row[7]
        assert rows(await page(client, "/console/deliveries?tenant=nobody"), "deliveries") == [
            ["No delivery."]
        ]
        assert rows(await page(client, "/console/deliveries?status=failed"), "deliveries") == [
            ["No delivery."]
        ]

        delivery_id = html.split('action="/console/deliveries/', 1)[1].split("/", 1)[0]
        token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = await client.post(
            f"/console/deliveries/{delivery_id}/retry", data={"csrf_token": token}
        )
        assert response.status_code == 303, response.text

        async def sent_again() -> list[list[str]] | None:
            found = rows(await page(client, "/console/deliveries"), "deliveries")
            # The retry starts a new round: one attempt of it so far.
            return found if found[0][5] == "1" and found[0][4] == "pending" else None

        await until(sent_again, message="the retried attempt")
        deliveries = (await palisade.api.list_webhook_deliveries("acme")).json()["items"]
        assert [d["id"] for d in deliveries] == [delivery_id]

    async def test_an_unknown_delivery_is_404_and_a_bad_status_400(
        self, palisade: Palisade, console: Console
    ) -> None:
        client = await console(palisade)
        html = await page(client, "/console/deliveries")
        token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        for delivery_id in ("d1", str(uuid.uuid4())):
            response = await client.post(
                f"/console/deliveries/{delivery_id}/retry",
                data={"csrf_token": token},
                headers={"Accept": "application/json"},
            )
            assert response.status_code == 404
            assert response.json()["code"] == "delivery_not_found"
        response = await client.get(
            "/console/deliveries?status=lost", headers={"Accept": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_status"


def test_the_table_reader_reads_cells_as_text() -> None:
    """The parser the page tests read pages with."""
    html = "<table id='t'><tr><th>a</th></tr><tr><td> x <b>y</b> </td></tr></table>"
    assert tables(html) == {"t": [["a"], ["x y"]]}


@pytest.mark.parametrize(
    "path",
    [
        "/console/deliveries?tenant=a%00b",
        "/console/deliveries?cursor=" + "x" * 201,
        "/console/sessions/" + "%00",
        "/console/login?next=" + "x" * 2001,
    ],
)
async def test_hostile_query_values_are_a_clear_4xx(
    palisade: Palisade, console: Console, path: str
) -> None:
    client = await console(palisade)
    response = await client.get(path, headers={"Accept": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["code"]
