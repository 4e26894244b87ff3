"""The sender: signed deliveries to a real receiver process, retries, 410, failure."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from app.db.models import WebhookEndpoint
from app.db.repositories.webhooks import WebhookRepository
from app.domain.webhooks.signing import new_secret
from tests.conftest import PalisadeFactory
from tests.integration.api.test_artifacts import wait_for
from tests.integration.api.test_sessions import setup_tenant, start
from tests.integration.test_metrics import delta, scrape, wait_scrape
from tests.support.receiver import Receiver, receiver_process
from tests.support.stack import Palisade
from tests.support.wait import until

FAST_RETRIES = {"PALISADE_WEBHOOK_RETRY_SECONDS": [0.05, 0.05, 0.05]}


@pytest.fixture
def receiver(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Receiver]:
    args: tuple[str, ...] = getattr(request, "param", ())
    with receiver_process(tmp_path, *args) as running:
        yield running


async def add_endpoint(
    palisade: Palisade, url: str, *, event_types: list[str] | None = None
) -> tuple[uuid.UUID, str]:
    """An endpoint of tenant acme; returns its id and secret."""
    secret = new_secret()
    async with palisade.runtime.sessionmaker.begin() as db:
        endpoint = await WebhookRepository(db).add_endpoint(
            WebhookEndpoint(
                tenant_id="acme",
                url=url,
                event_types=event_types,
                secret_encrypted=palisade.runtime.secret_box.encrypt(secret),
            )
        )
    return endpoint.id, secret


async def received(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        got = await receiver.requests()
        return got if len(got) >= count else None

    return await until(probe, message=f"{count} requests received")


async def delivery_rows(palisade: Palisade) -> list[dict[str, Any]]:
    async with palisade.runtime.sessionmaker() as db:
        rows = await db.execute(
            text(
                "SELECT d.status, d.attempts, d.event_type, count(a.id) AS recorded"
                " FROM webhook_delivery d LEFT JOIN webhook_attempt a ON a.delivery_id = d.id"
                " GROUP BY d.id ORDER BY d.created_at"
            )
        )
        return [dict(row._mapping) for row in rows]


async def end_a_session(palisade: Palisade, key: str) -> dict[str, Any]:
    session: dict[str, Any] = (await start(palisade, key, {"profile": "coach"})).json()
    response = await palisade.as_tenant(key, "POST", f"/sessions/{session['id']}/end")
    assert response.status_code == 202, response.text
    return session


class TestSigned:
    async def test_each_event_verifies_with_the_standard_webhooks_library(
        self, palisade: Palisade, receiver: Receiver
    ) -> None:
        key, _ = await setup_tenant(palisade)
        _, secret = await add_endpoint(
            palisade, f"{receiver.url}/hook", event_types=["session.active", "session.ended"]
        )
        session = await end_a_session(palisade, key)

        requests = await received(receiver, 2)
        verifier = Webhook(secret)
        events = [verifier.verify(r["raw"], r["headers"]) for r in requests]
        assert sorted(e["type"] for e in events) == ["session.active", "session.ended"]
        for request, event in zip(requests, events, strict=True):
            assert request["headers"]["webhook-id"] == event["id"]
            assert request["headers"]["content-type"] == "application/json"
            assert event["data"]["id"] == session["id"]
        by_type = {e["type"]: e for e in events}
        assert by_type["session.active"]["data"]["status"] == "active"
        assert by_type["session.ended"]["data"]["status"] == "ended"
        assert by_type["session.active"]["sequence"] < by_type["session.ended"]["sequence"]
        # The ended event's data is the session view as GET shows it.
        viewed = (await palisade.api_as(key).get_session(session["id"])).json()
        assert by_type["session.ended"]["data"]["end_reason"] == viewed["end_reason"]

    async def test_another_secret_does_not_verify(
        self, palisade: Palisade, receiver: Receiver
    ) -> None:
        key, _ = await setup_tenant(palisade)
        await add_endpoint(palisade, f"{receiver.url}/hook", event_types=["session.active"])
        await start(palisade, key, {"profile": "coach"})

        [request] = await received(receiver, 1)
        with pytest.raises(Exception, match="signature"):
            Webhook(new_secret()).verify(request["raw"], request["headers"])


class TestRetries:
    @pytest.mark.parametrize("receiver", [("--fail-first", "500,500")], indirect=True)
    async def test_500_twice_then_200_is_sent_three_times_with_one_id(
        self, palisade_factory: PalisadeFactory, receiver: Receiver
    ) -> None:
        palisade = await palisade_factory(**FAST_RETRIES)
        key, _ = await setup_tenant(palisade)
        _, secret = await add_endpoint(
            palisade, f"{receiver.url}/hook", event_types=["session.active"]
        )
        await start(palisade, key, {"profile": "coach"})

        requests = await received(receiver, 3)
        assert [r["answered"] for r in requests] == [500, 500, 200]
        assert len({r["headers"]["webhook-id"] for r in requests}) == 1
        for request in requests:
            Webhook(secret).verify(request["raw"], request["headers"])

        async def delivered() -> list[dict[str, Any]] | None:
            rows = await delivery_rows(palisade)
            return rows if rows and rows[0]["status"] == "delivered" else None

        [row] = await until(delivered, message="delivered")
        assert row["attempts"] == 3
        assert row["recorded"] == 3

    @pytest.mark.parametrize("receiver", [("--status", "503")], indirect=True)
    async def test_failed_after_the_last_try(
        self, palisade_factory: PalisadeFactory, receiver: Receiver
    ) -> None:
        palisade = await palisade_factory(**FAST_RETRIES)
        key, _ = await setup_tenant(palisade)
        await add_endpoint(palisade, f"{receiver.url}/hook", event_types=["session.active"])
        await start(palisade, key, {"profile": "coach"})

        async def failed() -> list[dict[str, Any]] | None:
            rows = await delivery_rows(palisade)
            return rows if rows and rows[0]["status"] == "failed" else None

        [row] = await until(failed, message="failed")
        # The first try and one per retry of the schedule.
        assert row["attempts"] == 4
        assert row["recorded"] == 4
        assert len(await receiver.requests()) == 4

    @pytest.mark.parametrize("receiver", [("--status", "410")], indirect=True)
    async def test_410_disables_the_endpoint(
        self, palisade_factory: PalisadeFactory, receiver: Receiver
    ) -> None:
        palisade = await palisade_factory(**FAST_RETRIES)
        key, _ = await setup_tenant(palisade)
        endpoint_id, _ = await add_endpoint(palisade, f"{receiver.url}/hook")
        session = (await start(palisade, key, {"profile": "coach"})).json()

        async def disabled() -> WebhookEndpoint | None:
            async with palisade.runtime.sessionmaker() as db:
                row = await WebhookRepository(db).endpoint("acme", endpoint_id)
            return row if row is not None and not row.enabled else None

        endpoint = await until(disabled, message="endpoint disabled")
        assert endpoint.disabled_reason is not None
        assert "410" in endpoint.disabled_reason
        response = await palisade.as_tenant(key, "POST", f"/sessions/{session['id']}/end")
        assert response.status_code == 202, response.text
        await wait_for(palisade.api_as(key), session["id"], lambda s: s["status"] == "ended", "end")

        # Later events are not even queued for it.
        rows = await delivery_rows(palisade)
        assert [(r["event_type"], r["status"]) for r in rows] == [("session.active", "failed")]
        assert len(await receiver.requests()) == 1


class TestMetrics:
    @pytest.mark.parametrize("receiver", [("--fail-first", "503,503")], indirect=True)
    async def test_attempts_by_outcome_and_the_oldest_pending(
        self, palisade_factory: PalisadeFactory, receiver: Receiver
    ) -> None:
        # Retries far apart: the delivery stays pending between them.
        palisade = await palisade_factory(PALISADE_WEBHOOK_RETRY_SECONDS=[0.05, 3600])
        before = await scrape(palisade)
        key, _ = await setup_tenant(palisade)
        await add_endpoint(palisade, f"{receiver.url}/hook", event_types=["session.active"])
        await start(palisade, key, {"profile": "coach"})

        waiting = await wait_scrape(
            palisade,
            lambda now: delta(now, before, "palisade_webhook_attempts_total", outcome="retry") == 2,
            "two failed attempts",
        )
        assert waiting.value("palisade_webhook_deliveries_pending") == 1
        assert waiting.value("palisade_webhook_oldest_pending_seconds") > 0
        assert delta(waiting, before, "palisade_webhook_attempt_duration_seconds_count") == 2


class TestTheDocumentedSnippet:
    async def test_verifies_a_real_delivery_and_refuses_a_changed_body(
        self, palisade: Palisade, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key, _ = await setup_tenant(palisade)
        _, secret = await add_endpoint(
            palisade, f"{receiver.url}/hook", event_types=["session.active"]
        )
        await start(palisade, key, {"profile": "coach"})
        [request] = await received(receiver, 1)

        monkeypatch.setenv("PALISADE_WEBHOOK_SECRET", secret)
        namespace: dict[str, Any] = {}
        exec(python_block_of(DOCS / "webhooks.md", "def verify("), namespace)
        verify = namespace["verify"]
        assert verify(request["raw"], request["headers"])["type"] == "session.active"
        with pytest.raises(namespace["WebhookVerificationError"]):
            verify(request["raw"].replace(b"active", b"ended!"), request["headers"])


DOCS = Path(__file__).resolve().parents[3] / "docs"


def python_block_of(path: Path, containing: str) -> str:
    blocks = path.read_text().split("```python\n")[1:]
    [block] = [b.split("```", 1)[0] for b in blocks if containing in b]
    return block


class TestBoundPerEndpoint:
    async def test_a_slow_receiver_does_not_hold_back_another_endpoint(
        self, palisade_factory: PalisadeFactory, tmp_path: Path
    ) -> None:
        palisade = await palisade_factory(
            PALISADE_WEBHOOK_ENDPOINT_CONCURRENCY=2, PALISADE_WEBHOOK_CONCURRENCY=8
        )
        key, _ = await setup_tenant(palisade, cap=20)
        with (
            receiver_process(tmp_path, "--delay-ms", "3000") as slow,
            receiver_process(tmp_path) as fast,
        ):
            await add_endpoint(palisade, f"{slow.url}/hook", event_types=["session.active"])
            await add_endpoint(palisade, f"{fast.url}/hook", event_types=["session.active"])
            for _ in range(10):
                assert (await start(palisade, key, {"profile": "coach"})).status_code == 201

            # Ten deliveries at 3 s each, two at a time, take 15 s to the slow receiver;
            # the fast one has all of its ten long before.
            got = await until(
                lambda: _at_least(fast, 10), within=5, message="the fast endpoint's ten"
            )
            assert len(got) == 10
            in_flight = await slow.requests()
            assert len(in_flight) <= 2


async def _at_least(receiver: Receiver, count: int) -> list[dict[str, Any]] | None:
    got = await receiver.requests()
    return got if len(got) >= count else None
