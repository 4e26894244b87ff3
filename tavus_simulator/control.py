"""The ``/_sim`` control API: inspect state and calls, reset, drive participants,
move the clock and configure faults. Unauthenticated by design (test-only)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tavus_simulator.errors import ControlError
from tavus_simulator.faults import OPERATIONS, parse_fault
from tavus_simulator.state import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ControlError(400, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


def _guard(endpoint: Endpoint) -> Endpoint:
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ControlError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except ValidationError as exc:
            return JSONResponse(
                {"error": "invalid request", "details": json.loads(exc.json())}, status_code=400
            )
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return guarded


def _operation(request: Request) -> str:
    operation: str = request.path_params["operation"]
    if operation not in OPERATIONS:
        raise ControlError(404, f"unknown operation {operation}; expected one of {OPERATIONS}")
    return operation


def control_routes(sim: Simulator) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def state(request: Request) -> Response:
        return JSONResponse(sim.snapshot())

    async def calls(request: Request) -> Response:
        operation = request.query_params.get("operation") or None
        since = int(request.query_params.get("since", "0") or 0)
        return JSONResponse({"data": [c.json() for c in sim.call_log(operation, since)]})

    async def reset(request: Request) -> Response:
        seed = (await _body(request)).get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ControlError(400, "seed must be an integer")
        sim.reset(seed)
        return JSONResponse({"seed": sim.seed})

    async def configure(request: Request) -> Response:
        config = sim.configure(**await _body(request))
        return JSONResponse(config.model_dump(mode="json"))

    async def advance(request: Request) -> Response:
        seconds = (await _body(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ControlError(400, "seconds must be a number")
        sim.advance(float(seconds))
        return JSONResponse({"sim_time_s": sim.clock.now()})

    async def list_faults(request: Request) -> Response:
        return JSONResponse(sim.faults.snapshot())

    async def add_fault(request: Request) -> Response:
        operation = _operation(request)
        sim.add_fault(operation, parse_fault(await _body(request)))
        return JSONResponse({operation: sim.faults.snapshot().get(operation, [])}, 201)

    async def replace_faults(request: Request) -> Response:
        operation = _operation(request)
        raw = (await _body(request)).get("faults", [])
        if not isinstance(raw, list):
            raise ControlError(400, "faults must be a list")
        sim.set_faults(operation, [parse_fault(item) for item in raw])
        return JSONResponse({operation: sim.faults.snapshot().get(operation, [])})

    async def clear_faults(request: Request) -> Response:
        operation = request.path_params.get("operation")
        sim.clear_faults(_operation(request) if operation is not None else None)
        return Response(status_code=204)

    async def join(request: Request) -> Response:
        participant_id = (await _body(request)).get("participant_id")
        pid = sim.join_participant(request.path_params["conversation_id"], participant_id)
        return JSONResponse({"participant_id": pid})

    async def leave(request: Request) -> Response:
        participant_id = (await _body(request)).get("participant_id")
        pid = sim.leave_participant(request.path_params["conversation_id"], participant_id)
        return JSONResponse({"participant_id": pid})

    async def face_join(request: Request) -> Response:
        sim.join_face(request.path_params["conversation_id"])
        return JSONResponse({"status": "joined"})

    async def shutdown(request: Request) -> Response:
        body = await _body(request)
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason:
            raise ControlError(400, "reason is required")
        conversation_id = request.path_params["conversation_id"]
        sim.shutdown_conversation(conversation_id, reason, error=bool(body.get("error")))
        return JSONResponse(sim.conversation(conversation_id).control_json())

    async def conversation(request: Request) -> Response:
        return JSONResponse(sim.conversation(request.path_params["conversation_id"]).control_json())

    async def pal(request: Request) -> Response:
        return JSONResponse(sim.pal(request.path_params["pal_id"]).control_json())

    async def prefill(request: Request) -> Response:
        return JSONResponse(sim.prefill(await _body(request)))

    async def drain(request: Request) -> Response:
        timeout = (await _body(request)).get("timeout_s", 10.0)
        try:
            await sim.webhooks.drain(float(timeout))
        except TimeoutError as exc:
            raise ControlError(504, str(exc)) from None
        return JSONResponse({"pending": sim.webhooks.pending})

    conv = "/_sim/conversations/{conversation_id}"
    table: list[tuple[str, Endpoint, str]] = [
        ("/_sim/healthz", healthz, "GET"),
        ("/_sim/state", state, "GET"),
        ("/_sim/calls", calls, "GET"),
        ("/_sim/reset", reset, "POST"),
        ("/_sim/config", configure, "PATCH"),
        ("/_sim/clock/advance", advance, "POST"),
        ("/_sim/faults", list_faults, "GET"),
        ("/_sim/faults", clear_faults, "DELETE"),
        ("/_sim/faults/{operation}", add_fault, "POST"),
        ("/_sim/faults/{operation}", replace_faults, "PUT"),
        ("/_sim/faults/{operation}", clear_faults, "DELETE"),
        ("/_sim/prefill", prefill, "POST"),
        ("/_sim/pals/{pal_id}", pal, "GET"),
        (conv, conversation, "GET"),
        (f"{conv}/join", join, "POST"),
        (f"{conv}/leave", leave, "POST"),
        (f"{conv}/face/join", face_join, "POST"),
        (f"{conv}/shutdown", shutdown, "POST"),
        ("/_sim/webhooks/drain", drain, "POST"),
    ]
    return [Route(path, _guard(endpoint), methods=[method]) for path, endpoint, method in table]
