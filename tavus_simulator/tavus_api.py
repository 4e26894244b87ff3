"""Tavus's /v2 endpoints for PALs (and their /v2/personas aliases) and conversations."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tavus_simulator import app_messages
from tavus_simulator.app_messages import app_message_error
from tavus_simulator.clock import iso_naive, iso_z
from tavus_simulator.errors import (
    APP_MESSAGES_ACTIVE_ONLY,
    APP_MESSAGES_ROOM_GONE,
    APP_MESSAGES_TOO_MANY,
    bad_request,
)
from tavus_simulator.lifecycle import ROOM_GONE_REASONS
from tavus_simulator.operations import Call, Handler, TavusOperation
from tavus_simulator.records import ConversationRecord, PalRecord
from tavus_simulator.state import Simulator

# Request keys that pal_json renders under their path-specific names.
_PAL_IDENTITY_KEYS = frozenset(
    {"pal_id", "pal_name", "persona_id", "persona_name", "default_face_id", "default_replica_id"}
)


def pal_json(pal: PalRecord, legacy: bool) -> dict[str, Any]:
    body = {k: v for k, v in pal.request.items() if k not in _PAL_IDENTITY_KEYS}
    body.update(
        {
            "persona_id" if legacy else "pal_id": pal.pal_id,
            "persona_name" if legacy else "pal_name": pal.pal_name,
            "system_prompt": pal.system_prompt,
            "default_replica_id" if legacy else "default_face_id": pal.default_face_id,
            "pipeline_mode": pal.pipeline_mode,
            "conferencing_email": pal.conferencing_email,
            "document_ids": pal.request.get("document_ids") or [],
            "document_tags": pal.request.get("document_tags") or [],
            "layers": pal.request.get("layers") or {},
            "created_at": iso_naive(pal.created_at),
            "updated_at": iso_naive(pal.updated_at),
        }
    )
    return body


def conversation_json(conv: ConversationRecord, verbose: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "conversation_id": conv.conversation_id,
        "conversation_name": conv.conversation_name,
        "conversation_url": conv.conversation_url,
        "callback_url": conv.callback_url,
        "status": conv.status,
        "replica_id": conv.face_id,
        "persona_id": conv.pal_id,
        "pal_id": conv.pal_id,
        "created_at": iso_z(conv.created_at),
        "updated_at": iso_z(conv.updated_at),
    }
    if verbose:
        body["events"] = list(conv.events)
    return body


def _pal_handlers(sim: Simulator, legacy: bool) -> dict[str, Handler]:
    id_param = "persona_id" if legacy else "pal_id"
    type_param = "persona_type" if legacy else "pal_type"

    async def create(call: Call) -> Response:
        pal = sim.store.create_pal(call.account, await call.json_body(), legacy)
        call.object_id = pal.pal_id
        return JSONResponse(
            {
                "persona_id" if legacy else "pal_id": pal.pal_id,
                "persona_name" if legacy else "pal_name": pal.pal_name,
                "conferencing_email": pal.conferencing_email,
                "created_at": iso_naive(pal.created_at),
            }
        )

    async def get(call: Call) -> Response:
        pal_id = call.request.path_params[id_param]
        call.object_id = pal_id
        pal = sim.store.get_pal(call.account, pal_id, legacy)
        body = pal_json(pal, legacy)
        if sim.config.pal_get_shape == "wrapped":
            return JSONResponse({"data": [body]})
        return JSONResponse(body)

    async def list_(call: Call) -> Response:
        page = call.positive_int_query("page", 1)
        limit = call.positive_int_query("limit", 10)
        pal_type = call.request.query_params.get(type_param) or call.request.query_params.get(
            "pal_type"
        )
        if pal_type is not None and pal_type not in ("user", "system"):
            raise bad_request(f"{type_param} must be one of: user, system")
        pals, total = sim.store.list_pals(call.account, pal_type, page, limit)
        return JSONResponse({"data": [pal_json(pal, legacy) for pal in pals], "total_count": total})

    async def delete(call: Call) -> Response:
        pal_id = call.request.path_params[id_param]
        call.object_id = pal_id
        sim.store.delete_pal(call.account, pal_id, legacy)
        return Response(status_code=204)

    return {"create": create, "get": get, "list": list_, "delete": delete}


def _conversation_handlers(sim: Simulator) -> dict[str, Handler]:
    async def create(call: Call) -> Response:
        conv = sim.store.create_conversation(call.account, await call.json_body())
        call.object_id = conv.conversation_id
        body: dict[str, Any] = {
            "conversation_id": conv.conversation_id,
            "conversation_name": conv.conversation_name,
            "conversation_url": conv.conversation_url,
            "status": conv.status,
            "callback_url": conv.callback_url,
            "created_at": iso_z(conv.created_at),
        }
        if conv.meeting_token is not None:
            body["meeting_token"] = conv.meeting_token
        return JSONResponse(body)

    async def get(call: Call) -> Response:
        conversation_id = call.request.path_params["conversation_id"]
        call.object_id = conversation_id
        conv = sim.store.get_conversation(call.account, conversation_id)
        verbose = call.request.query_params.get("verbose", "").lower() == "true"
        body = conversation_json(conv, verbose)
        if sim.config.conversation_get_shape == "wrapped":
            return JSONResponse({"data": [body]})
        return JSONResponse(body)

    async def list_(call: Call) -> Response:
        page = call.positive_int_query("page", 1)
        limit = call.positive_int_query("limit", 10)
        status = call.request.query_params.get("status") or None
        if status is not None and status not in ("active", "ended", "error"):
            raise bad_request("status must be one of: active, ended")
        convs, total = sim.store.list_conversations(call.account, status, page, limit)
        return JSONResponse(
            {"data": [conversation_json(conv) for conv in convs], "total_count": total}
        )

    async def end(call: Call) -> Response:
        conversation_id = call.request.path_params["conversation_id"]
        call.object_id = conversation_id
        sim.store.end_conversation(call.account, conversation_id)
        return Response(status_code=200)

    async def delete(call: Call) -> Response:
        conversation_id = call.request.path_params["conversation_id"]
        call.object_id = conversation_id
        sim.store.delete_conversation(call.account, conversation_id)
        return Response(status_code=204)

    async def send_app_message(call: Call) -> Response:
        conversation_id = call.request.path_params["conversation_id"]
        call.object_id = conversation_id
        config = sim.config
        raw = await call.request.body()
        # Checked first, as a gateway does, before anything reads the body.
        if len(raw) > config.app_message_max_bytes:
            raise app_message_error(
                413, f"Request body exceeds {config.app_message_max_bytes} bytes"
            )
        conv = sim.store.get_conversation(call.account, conversation_id)
        if not app_messages.take_rate_slot(conv, sim.clock.now(), config):
            raise app_message_error(429, APP_MESSAGES_TOO_MANY)
        if conv.status != "active":
            if conv.shutdown_reason in ROOM_GONE_REASONS:
                raise app_message_error(410, APP_MESSAGES_ROOM_GONE)
            raise app_message_error(400, APP_MESSAGES_ACTIVE_ONLY)
        body = app_messages.parse_interaction(raw, conversation_id)
        call.event_type = body["event_type"]
        app_messages.accept(conv, body, sim.clock.wall())
        return Response(status_code=200)

    return {
        "create": create,
        "get": get,
        "list": list_,
        "end": end,
        "delete": delete,
        "send_app_message": send_app_message,
    }


class TavusRouter:
    """ASGI dispatcher for ``/v2``: a dict lookup on the path's shape instead of
    trying regex routes one by one, since this is the simulator's hot path."""

    def __init__(self, sim: Simulator) -> None:
        # (method, collection, depth, action): depth counts segments after the
        # collection; action is the segment after an id ("end"), else "".
        self._table: dict[tuple[str, str, int, str], tuple[TavusOperation, str | None]] = {}
        for collection, param, legacy in (
            ("pals", "pal_id", False),
            ("personas", "persona_id", True),
        ):
            pal = _pal_handlers(sim, legacy)
            self._add(sim, "POST", collection, 0, "", "pal.create", pal["create"], None)
            self._add(sim, "GET", collection, 0, "", "pal.list", pal["list"], None)
            self._add(sim, "GET", collection, 1, "", "pal.get", pal["get"], param)
            self._add(sim, "DELETE", collection, 1, "", "pal.delete", pal["delete"], param)
        conv = _conversation_handlers(sim)
        param = "conversation_id"
        for method, depth, action, operation, handler in (
            ("POST", 0, "", "conversation.create", conv["create"]),
            ("GET", 0, "", "conversation.list", conv["list"]),
            ("GET", 1, "", "conversation.get", conv["get"]),
            ("DELETE", 1, "", "conversation.delete", conv["delete"]),
            ("POST", 2, "end", "conversation.end", conv["end"]),
            (
                "POST",
                2,
                "send-app-message",
                "conversation.send_app_message",
                conv["send_app_message"],
            ),
        ):
            endpoint_param = param if depth else None
            self._add(
                sim, method, "conversations", depth, action, operation, handler, endpoint_param
            )
        self._known = {key[1:] for key in self._table}

    def _add(
        self,
        sim: Simulator,
        method: str,
        collection: str,
        depth: int,
        action: str,
        operation: str,
        handler: Handler,
        param: str | None,
    ) -> None:
        endpoint = TavusOperation(sim, operation, handler)
        self._table[(method, collection, depth, action)] = (endpoint, param)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # "/v2/conversations/c1/end" -> ["", "v2", "conversations", "c1", "end"]
        parts = scope["path"].rstrip("/").split("/")
        collection = parts[2] if len(parts) > 2 else ""
        depth = len(parts) - 3
        action = parts[4] if depth == 2 else ""
        shape = (collection, depth, action)
        entry = self._table.get((scope["method"], *shape))
        if entry is None:
            if shape in self._known:
                response = JSONResponse({"message": "Method Not Allowed"}, status_code=405)
            else:
                response = JSONResponse({"message": "Not Found"}, status_code=404)
            await response(scope, receive, send)
            return
        endpoint, param = entry
        if param is not None:
            scope["path_params"] = {param: parts[3]}
        await endpoint(scope, receive, send)
