from __future__ import annotations

import random
import statistics
import time

import httpx
import pytest
from pydantic import ValidationError

from tavus_simulator import (
    DropFault,
    ErrorFault,
    HangFault,
    LatencyFault,
    SucceedThenDropFault,
)
from tavus_simulator.faults import FaultTable
from tests.integration.simulator.conftest import PAL_BODY, Harness, Served, eventually_async


class TestErrorFaults:
    @pytest.mark.parametrize(
        ("preset", "status", "body"),
        [
            ("server_error", 500, {"message": "Internal Server Error"}),
            ("unavailable", 503, {"message": "Service Unavailable"}),
            (
                "concurrency_limit",
                400,
                {"message": "User has reached maximum concurrent conversations"},
            ),
            ("out_of_credits", 402, {"message": "The user is out of conversational credits"}),
        ],
    )
    async def test_presets_answer_tavus_bodies_without_side_effects(
        self, harness: Harness, preset: str, status: int, body: dict[str, str]
    ) -> None:
        pal_id = await harness.create_pal()
        harness.sim.add_fault("conversation.create", {"kind": "error", "preset": preset})

        response = await harness.client.post("/v2/conversations", json={"pal_id": pal_id})

        assert response.status_code == status
        assert response.json() == body
        assert harness.sim.store.conversations == {}
        assert harness.sim.call_log("conversation.create")[-1].fault == f"error:{status}"

    async def test_rate_limited_carries_retry_after(self, harness: Harness) -> None:
        harness.sim.add_fault("pal.list", ErrorFault(preset="rate_limited", retry_after_s=7))

        response = await harness.client.get("/v2/pals")

        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"

    async def test_custom_status_body_and_headers(self, harness: Harness) -> None:
        fault = ErrorFault(status=502, body="<html>bad gateway</html>", headers={"x-edge": "1"})
        harness.sim.add_fault("pal.create", fault)

        response = await harness.client.post("/v2/pals", json=PAL_BODY)

        assert response.status_code == 502
        assert response.text == "<html>bad gateway</html>"
        assert response.headers["x-edge"] == "1"

    async def test_times_limits_the_fault_to_the_next_calls(self, harness: Harness) -> None:
        harness.sim.add_fault("pal.list", ErrorFault(status=503, times=2))

        statuses = [(await harness.client.get("/v2/pals")).status_code for _ in range(4)]

        assert statuses == [503, 503, 200, 200]
        assert harness.sim.faults.snapshot() == {}

    async def test_snapshot_shows_remaining_and_fired(self, harness: Harness) -> None:
        harness.sim.add_fault("pal.list", ErrorFault(status=503, times=3))
        await harness.client.get("/v2/pals")
        [rule] = harness.sim.faults.snapshot()["pal.list"]
        assert (rule["remaining"], rule["fired"]) == (2, 1)

    async def test_faults_apply_before_auth(self, harness: Harness) -> None:
        harness.sim.add_fault("pal.list", ErrorFault(status=503, times=1))
        response = await harness.client_for(None).get("/v2/pals")
        assert response.status_code == 503

    async def test_first_firing_outcome_wins(self, harness: Harness) -> None:
        harness.sim.set_faults(
            "pal.list",
            [ErrorFault(status=500, times=1), ErrorFault(status=503, times=1)],
        )
        first = await harness.client.get("/v2/pals")
        second = await harness.client.get("/v2/pals")
        assert (first.status_code, second.status_code) == (500, 503)

    def test_error_fault_needs_a_status(self) -> None:
        with pytest.raises(ValidationError):
            ErrorFault()

    async def test_kinds_are_checked_against_the_operation(self, harness: Harness) -> None:
        with pytest.raises(ValueError, match="does not apply"):
            harness.sim.add_fault("webhook", ErrorFault(status=500))
        with pytest.raises(ValueError, match="does not apply"):
            harness.sim.add_fault("pal.get", DropFault())
        with pytest.raises(ValueError, match="unknown operation"):
            harness.sim.add_fault("pal.patch", ErrorFault(status=500))


class TestLatency:
    async def test_fixed_latency_delays_the_call(self, harness: Harness) -> None:
        harness.sim.add_fault("pal.list", LatencyFault(ms=80, times=1))

        started = time.perf_counter()
        response = await harness.client.get("/v2/pals")
        elapsed = time.perf_counter() - started

        assert response.status_code == 200
        assert elapsed >= 0.08
        entry = harness.sim.call_log("pal.list")[-1]
        assert entry.fault == "latency:80ms"
        assert entry.latency_ms >= 80

    async def test_latency_combines_with_an_error(self, harness: Harness) -> None:
        harness.sim.set_faults(
            "pal.list", [LatencyFault(ms=10, times=1), ErrorFault(status=503, times=1)]
        )
        response = await harness.client.get("/v2/pals")
        assert response.status_code == 503
        assert harness.sim.call_log("pal.list")[-1].fault == "latency:10ms+error:503"

    def test_lognormal_has_the_requested_median(self) -> None:
        table = FaultTable(random.Random(3))
        fault = LatencyFault(distribution="lognormal", p50_ms=40, sigma=0.8)
        samples = [fault.sample_ms(table.rng) for _ in range(4001)]
        assert statistics.median(samples) == pytest.approx(40, rel=0.1)

    def test_uniform_stays_in_bounds_and_max_caps(self) -> None:
        rng = random.Random(3)
        uniform = LatencyFault(distribution="uniform", low_ms=5, high_ms=15)
        capped = LatencyFault(distribution="lognormal", p50_ms=100, sigma=2, max_ms=120)
        assert all(5 <= uniform.sample_ms(rng) <= 15 for _ in range(500))
        assert max(capped.sample_ms(rng) for _ in range(500)) == 120


class TestHangInProcess:
    async def test_hang_holds_then_drops_without_running(self, harness: Harness) -> None:
        harness.sim.add_fault("pal.create", HangFault(seconds=0.1, times=1))

        started = time.perf_counter()
        with pytest.raises(httpx.RemoteProtocolError):
            await harness.client.post("/v2/pals", json=PAL_BODY)

        assert time.perf_counter() - started >= 0.1
        assert harness.sim.store.pals == {}
        entry = harness.sim.call_log("pal.create")[-1]
        assert (entry.status, entry.fault) == (None, "hang")


class TestSucceedThenDropInProcess:
    async def test_side_effect_happens_but_the_caller_sees_no_response(
        self, harness: Harness
    ) -> None:
        pal_id = await harness.create_pal()
        harness.sim.add_fault("conversation.create", SucceedThenDropFault(times=1))

        with pytest.raises(httpx.TransportError):
            await harness.client.post("/v2/conversations", json={"pal_id": pal_id})

        [conversation] = harness.sim.store.conversations.values()
        assert conversation.status == "active"
        entry = harness.sim.call_log("conversation.create")[-1]
        assert entry.status is None
        assert entry.object_id == conversation.conversation_id
        assert entry.error == "succeed_then_drop: dropped a 200 response"


class TestFaultsOverSockets:
    async def test_hang_until_the_client_times_out(self, served: Served) -> None:
        async with served.client(headers={"x-api-key": "k"}, timeout=0.3) as client:
            rule = {"kind": "hang", "seconds": 30, "times": 1}
            await client.post("/_sim/faults/pal.create", json=rule)

            with pytest.raises(httpx.ReadTimeout):
                await client.post("/v2/pals", json=PAL_BODY)

            # The simulator notices the disconnect and stops holding long before 30 s.
            async def logged() -> list[dict[str, object]]:
                calls = (await client.get("/_sim/calls?operation=pal.create")).json()["data"]
                return list(calls)

            [entry] = await eventually_async(logged, within=3.0, what="hang ends on disconnect")
            assert entry["fault"] == "hang"
            assert (await client.get("/_sim/state")).json()["pals"] == []

    async def test_hang_then_connection_closed(self, served: Served) -> None:
        async with served.client(headers={"x-api-key": "k"}, timeout=5) as client:
            await client.post("/_sim/faults/pal.list", json={"kind": "hang", "seconds": 0.05})
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/v2/pals")

    async def test_succeed_then_drop_closes_the_connection(self, served: Served) -> None:
        async with served.client(headers={"x-api-key": "k"}, timeout=5) as client:
            rule = {"kind": "succeed_then_drop", "times": 1}
            await client.post("/_sim/faults/pal.create", json=rule)

            with pytest.raises(httpx.RemoteProtocolError):
                await client.post("/v2/pals", json=PAL_BODY)

            state = (await client.get("/_sim/state")).json()
            assert [p["pal_name"] for p in state["pals"]] == ["Life Coach"]
            # The connection pool recovers: the next call works.
            assert (await client.get("/v2/pals")).status_code == 200

    async def test_succeed_then_drop_with_hold_times_the_client_out(self, served: Served) -> None:
        async with served.client(headers={"x-api-key": "k"}, timeout=0.2) as client:
            rule = {"kind": "succeed_then_drop", "hold_s": 30, "times": 1}
            await client.post("/_sim/faults/pal.create", json=rule)

            with pytest.raises(httpx.ReadTimeout):
                await client.post("/v2/pals", json=PAL_BODY)

            state = (await client.get("/_sim/state")).json()
            assert len(state["pals"]) == 1
