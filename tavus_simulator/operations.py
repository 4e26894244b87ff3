"""The wrapper every Tavus endpoint runs in: faults, auth, error bodies, call log.

Each endpoint is a plain ASGI callable (no middleware stack), which keeps the hot
path short and gives fault injection access to the raw connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tavus_simulator.errors import INVALID_ACCESS_TOKEN, TavusError, bad_request
from tavus_simulator.faults import ErrorFault, HangFault, SucceedThenDropFault
from tavus_simulator.records import Account
from tavus_simulator.state import Simulator


class SimulatedConnectionDrop(httpx.RemoteProtocolError):
    """Raised to cut a connection on purpose.

    Over sockets the server closes the connection after the status line, so a
    client reading the body gets ``httpx.RemoteProtocolError``. Through
    ``httpx.ASGITransport`` this exception reaches the caller itself, and being an
    ``httpx.RemoteProtocolError`` it is handled like the real thing.
    """


@dataclass(slots=True)
class Call:
    request: Request
    account: Account
    object_id: str | None = None
    event_type: str | None = None

    async def json_body(self) -> dict[str, Any]:
        raw = await self.request.body()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise bad_request("Invalid JSON body") from None
        if not isinstance(body, dict):
            raise bad_request("Request body must be a JSON object")
        return body

    def positive_int_query(self, name: str, default: int) -> int:
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise bad_request(f"{name} must be a positive integer")
        return value


Handler = Callable[[Call], Awaitable[Response]]


class TavusOperation:
    """ASGI endpoint for one named Tavus operation."""

    def __init__(self, simulator: Simulator, operation: str, handler: Handler) -> None:
        self.simulator = simulator
        self.operation = operation
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.simulator
        sim.ensure_started()
        started = time.perf_counter()
        request = Request(scope, receive)
        api_key = request.headers.get("x-api-key")
        plan = sim.faults.draw_api(self.operation)
        status: int | None = None
        error: str | None = None
        call: Call | None = None
        try:
            response: Response | None = None
            outcome = plan.outcome if plan is not None else None
            if plan is not None and plan.latency_ms > 0:
                await asyncio.sleep(plan.latency_ms / 1000.0)
            if isinstance(outcome, ErrorFault) and not outcome.apply_before_error:
                response = _fault_response(outcome)
            elif isinstance(outcome, HangFault):
                await _hold(outcome.seconds, receive)
                error = "hang: connection dropped"
                await _drop(send)
            if response is None:
                account = self._authenticate(api_key)
                if account is None:
                    response = JSONResponse(INVALID_ACCESS_TOKEN, status_code=401)
                else:
                    call = Call(request, account)
                    try:
                        response = await self.handler(call)
                    except TavusError as exc:
                        response = JSONResponse(exc.body, status_code=exc.status)
            if isinstance(outcome, ErrorFault) and outcome.apply_before_error:
                error = f"applied, then answered {outcome.status} (was {response.status_code})"
                response = _fault_response(outcome)
            if isinstance(outcome, SucceedThenDropFault):
                error = f"succeed_then_drop: dropped a {response.status_code} response"
                await _hold(outcome.hold_s, receive)
                await _drop(send)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            sim.calls.record(
                self.operation,
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000.0,
                plan.label if plan is not None else None,
                account=api_key,
                object_id=call.object_id if call is not None else None,
                event_type=call.event_type if call is not None else None,
                error=error,
                traceparent=request.headers.get("traceparent"),
            )

    def _authenticate(self, api_key: str | None) -> Account | None:
        if not api_key:
            return None
        allowed = self.simulator.config.api_keys
        if allowed is not None and api_key not in allowed:
            return None
        return self.simulator.store.account(api_key)


def _fault_response(fault: ErrorFault) -> Response:
    headers = fault.response_headers()
    if fault.body is None:
        return Response(status_code=fault.status, headers=headers)
    if isinstance(fault.body, str):
        return Response(fault.body, status_code=fault.status, headers=headers)
    return JSONResponse(fault.body, status_code=fault.status, headers=headers)


async def _hold(seconds: float, receive: Receive) -> None:
    # Stop early when the client gives up, so a long hang does not pin a task.
    if seconds <= 0:
        return

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    waiter = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await waiter


async def _drop(send: Send) -> None:
    # Start a response whose promised body never comes: uvicorn then closes the
    # socket (rather than answering 500), and clients fail reading the body.
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [(b"content-length", b"64"), (b"content-type", b"application/json")],
        }
    )
    raise SimulatedConnectionDrop("connection dropped by the Tavus simulator")
