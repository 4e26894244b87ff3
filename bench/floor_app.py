"""The floor of ``bench.floor``: the least a service can do for one reuse start with the
same stack and the same I/O as Palisade, and nothing else.

uvicorn (uvloop, httptools), FastAPI with a pydantic body that refuses unknown fields, an
asyncpg pool and one long-lived httpx client: an autocommit insert, the Tavus calls with
the bodies Palisade sends (for an ephemeral start, the PAL create first, then the
conversation on that PAL), an autocommit update (not waiting for the disk, as Palisade's
last write), a JSON answer. No authentication, idempotency, admission, profile, event
log, state machine, metrics or logs: everything Palisade adds on top of this is what the
difference between the two measures.

Configured by the environment (``FLOOR_*``), served by ``bench.floor``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

_STATE: dict[str, Any] = {}


class Start(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: str
    external_ref: str | None = None
    conversational_context: str | None = None
    overrides: dict[str, Any] | None = None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["FLOOR_DATABASE_URL"], min_size=2, max_size=10)
    async with pool.acquire() as connection:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS floor_session "
            "(id uuid PRIMARY KEY, external_ref text, conversation_id text, state text)"
        )
    async with httpx.AsyncClient(
        base_url=os.environ["FLOOR_TAVUS_URL"],
        headers={"x-api-key": os.environ["FLOOR_TAVUS_KEY"]},
    ) as http:
        _STATE.update(
            pool=pool,
            http=http,
            body=os.environ["FLOOR_CONVERSATION_BODY"],
            # Starts of this profile create a PAL of this body first (bench.burst).
            ephemeral_profile=os.environ.get("FLOOR_EPHEMERAL_PROFILE"),
            pal_body=os.environ.get("FLOOR_PAL_BODY", ""),
            ephemeral_body=os.environ.get(
                "FLOOR_EPHEMERAL_CONVERSATION_BODY", os.environ["FLOOR_CONVERSATION_BODY"]
            ),
        )
        yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.post("/sessions", status_code=201)
async def start(body: Start) -> dict[str, Any]:
    pool: asyncpg.Pool = _STATE["pool"]
    http: httpx.AsyncClient = _STATE["http"]
    session_id = uuid.uuid4()
    async with pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO floor_session (id, external_ref, state) VALUES ($1, $2, 'admitted')",
            session_id,
            body.external_ref,
        )
    ephemeral = body.profile == _STATE["ephemeral_profile"]
    template = _STATE["ephemeral_body"] if ephemeral else _STATE["body"]
    conversation_body = template.replace("{session}", str(session_id))
    if ephemeral:
        made = await http.post(
            "/v2/pals",
            content=_STATE["pal_body"].replace("{session}", str(session_id)),
            headers={"content-type": "application/json"},
        )
        made.raise_for_status()
        conversation_body = json.dumps(
            {**json.loads(conversation_body), "pal_id": made.json()["pal_id"]}
        )
    response = await http.post(
        "/v2/conversations",
        content=conversation_body,
        headers={"content-type": "application/json"},
    )
    response.raise_for_status()
    conversation = response.json()
    async with pool.acquire() as connection:
        # Committed as Palisade commits its last write: without waiting for the disk.
        await connection.execute(
            "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true)) "
            "UPDATE floor_session SET conversation_id = $2, state = 'active' "
            "FROM lazy WHERE id = $1",
            session_id,
            conversation["conversation_id"],
        )
    return {
        "id": str(session_id),
        "status": "active",
        "conversation_id": conversation["conversation_id"],
        "conversation_url": conversation.get("conversation_url"),
    }
