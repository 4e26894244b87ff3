"""GET /metrics through a whole session lifecycle on the live stack."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tavus_simulator import ErrorFault
from tests.conftest import PalisadeFactory
from tests.integration.api.test_sessions import setup_tenant, start
from tests.integration.api.test_webhooks import wait_status
from tests.support.stack import Palisade, SimulatorHandle
from tests.support.wait import until

Labels = frozenset[tuple[str, str]]


class Scrape:
    """One parsed exposition: every sample by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: dict[str, dict[Labels, float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                by_labels = self.samples.setdefault(sample.name, {})
                by_labels[frozenset(sample.labels.items())] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get(name, {}).get(frozenset(labels.items()), 0.0)

    def label_values(self) -> set[str]:
        return {value for series in self.samples.values() for key in series for _, value in key}

    def routes(self) -> set[str]:
        series = self.samples.get("palisade_http_request_duration_seconds_count", {})
        return {dict(key)["route"] for key in series}


async def scrape(palisade: Palisade) -> Scrape:
    response = await palisade.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def delta(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def wait_scrape(
    palisade: Palisade, condition: Callable[[Scrape], bool], message: str
) -> Scrape:
    async def probe() -> Scrape | None:
        current = await scrape(palisade)
        return current if condition(current) else None

    return await until(probe, within=15, message=message)


async def wait_metric(
    palisade: Palisade, name: str, wanted: float, labels: Mapping[str, str] | None = None
) -> Scrape:
    return await wait_scrape(
        palisade,
        lambda current: current.value(name, **(labels or {})) == wanted,
        f"{name}{dict(labels or {})} == {wanted}",
    )


async def test_a_session_lifecycle_moves_every_metric(
    palisade: Palisade, simulator: SimulatorHandle
) -> None:
    before = await scrape(palisade)
    key, persistent = await setup_tenant(palisade, tenant_id="metered")
    response = await start(palisade, key, {"profile": "voices"})
    assert response.status_code == 201, response.text
    session = response.json()

    live = await scrape(palisade)
    assert live.value("palisade_sessions", status="active") == 1
    # A live ephemeral PAL is in use, not owed: no backlog yet.
    assert live.value("palisade_cleanup_backlog") == 0

    simulator.sim.join_face(session["conversation_id"])
    await wait_metric(
        palisade,
        "palisade_time_to_face_seconds_count",
        before.value("palisade_time_to_face_seconds_count", strategy="ephemeral") + 1,
        {"strategy": "ephemeral"},
    )

    # Tavus refuses the deletion for a while: the ended session is owed a cleanup.
    simulator.sim.add_fault("pal.delete", ErrorFault(preset="unavailable"))
    simulator.sim.shutdown_conversation(session["conversation_id"], "participant_left_timeout")
    delete_failed = {"operation": "pal.delete", "error_class": "TavusServerError"}
    owed = await wait_scrape(
        palisade,
        lambda current: (
            current.value("palisade_cleanup_backlog") == 1
            and delta(current, before, "palisade_tavus_errors_total", **delete_failed) > 0
        ),
        "a failed PAL deletion",
    )
    assert owed.value("palisade_cleanup_oldest_pending_seconds") > 0
    assert owed.value("palisade_sessions", status="ended") == 1
    assert owed.value("palisade_sessions", status="active") == 0

    simulator.sim.clear_faults("pal.delete")
    await wait_status(palisade, key, session["id"], "ended", cleanup="done")
    after = await wait_metric(palisade, "palisade_cleanup_backlog", 0)
    assert after.value("palisade_cleanup_oldest_pending_seconds") == 0

    started = {"tenant": "metered", "profile": "voices", "strategy": "ephemeral"}
    assert delta(after, before, "palisade_sessions_started_total", **started) == 1
    assert (
        delta(after, before, "palisade_session_start_duration_seconds_count", strategy="ephemeral")
        == 1
    )
    assert delta(after, before, "palisade_time_to_face_seconds_count", strategy="ephemeral") == 1

    def tavus(operation: str, outcome: str = "ok") -> float:
        name = "palisade_tavus_request_duration_seconds_count"
        return delta(after, before, name, operation=operation, outcome=outcome)

    assert tavus("pal.create") == 2  # the tenant's persistent PAL, then the session's
    assert tavus("conversation.create") == 1
    assert tavus("pal.delete") == 1
    assert tavus("pal.delete", "TavusServerError") >= 1
    assert delta(after, before, "palisade_tavus_errors_total", **delete_failed) == tavus(
        "pal.delete", "TavusServerError"
    )

    for event_type in ("system.replica_joined", "system.shutdown"):
        assert delta(after, before, "palisade_webhook_lag_seconds_count", event_type=event_type)

    assert after.value("palisade_sessions", status="ended") == 1
    for status in ("creating", "active", "ending", "failed"):
        assert after.value("palisade_sessions", status=status) == 0
    assert after.value("palisade_reconciler_last_success_timestamp_seconds") > 0
    assert after.value("palisade_reconciler_cycle_duration_seconds_count") > 0

    http = "palisade_http_request_duration_seconds_count"
    assert delta(after, before, http, method="POST", route="/sessions", status="201") == 1
    assert delta(after, before, http, method="GET", route="/sessions/{session_id}", status="200")
    assert delta(
        after, before, http, method="POST", route="/webhooks/tavus/{session_id}", status="200"
    )
    assert "/metrics" not in after.routes()
    identifiers = {session["id"], session["conversation_id"], session["pal_id"], persistent}
    for value in after.label_values():
        assert not any(identifier in value for identifier in identifiers), value
        assert "token" not in value


async def test_unmatched_paths_share_one_route_label(palisade: Palisade) -> None:
    before = await scrape(palisade)
    for path in ("/nope", "/sessions/x/y/z", "/wp-login.php"):
        assert (await palisade.client.get(path)).status_code == 404
    after = await scrape(palisade)
    http = "palisade_http_request_duration_seconds_count"
    assert delta(after, before, http, method="GET", route="unmatched", status="404") == 3
    assert not after.routes() & {"/nope", "/sessions/x/y/z", "/wp-login.php"}


async def test_a_body_refused_before_routing_is_counted_under_its_route(
    palisade: Palisade,
) -> None:
    before = await scrape(palisade)
    # In process: a socket client refuses to declare more body than it sends.
    transport = httpx.ASGITransport(app=palisade.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://palisade.test") as client:
        response = await client.post(
            "/sessions", content=b"x", headers={"content-length": str(10**9)}
        )
    assert response.status_code == 413
    after = await scrape(palisade)
    http = "palisade_http_request_duration_seconds_count"
    assert delta(after, before, http, method="POST", route="/sessions", status="413") == 1


async def test_metrics_are_not_part_of_the_api_schema(palisade: Palisade) -> None:
    paths = (await palisade.client.get("/openapi.json")).json()["paths"]
    assert "/metrics" not in paths


async def test_a_metrics_token_closes_the_scrape_to_anyone_without_it(
    palisade_factory: PalisadeFactory,
) -> None:
    token = "scrape-" + "t" * 24
    palisade = await palisade_factory(PALISADE_METRICS_TOKEN=token)
    missing = await palisade.client.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await palisade.client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 31})
    assert wrong.status_code == 401
    right = await palisade.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert right.status_code == 200
    assert "palisade_sessions" in right.text
    # The probes stay open: the kubelet sends no credentials.
    assert (await palisade.client.get("/healthz")).status_code == 200


PRODUCTION = {
    "PALISADE_MODE": "production",
    "ADMIN_TOKEN": "metrics-test-admin-" + "a" * 16,
    "SECRET_KEY": "metrics-test-secret-" + "s" * 32,
}
METRICS_OFF = "GET /metrics answers 404 until PALISADE_METRICS_TOKEN is set"


async def test_in_production_without_a_token_metrics_are_off_and_start_up_says_so(
    palisade_factory: PalisadeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    palisade = await palisade_factory(**PRODUCTION)
    for headers in ({}, {"Authorization": "Bearer " + "x" * 32}):
        closed = await palisade.client.get("/metrics", headers=headers)
        assert closed.status_code == 404
        assert closed.json()["code"] == "not_found"
    assert [r.getMessage() for r in caplog.records].count(METRICS_OFF) == 1
    assert (await palisade.client.get("/healthz")).status_code == 200


async def test_in_production_a_token_opens_the_scrape_to_its_holder(
    palisade_factory: PalisadeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    token = "scrape-" + "p" * 24
    palisade = await palisade_factory(**PRODUCTION, PALISADE_METRICS_TOKEN=token)
    assert (await palisade.client.get("/metrics")).status_code == 401
    right = await palisade.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert right.status_code == 200
    assert "palisade_sessions" in right.text
    assert METRICS_OFF not in caplog.text


async def test_in_dev_mode_metrics_stay_open(palisade: Palisade) -> None:
    assert palisade.runtime.settings.is_dev
    assert (await palisade.client.get("/metrics")).status_code == 200
