"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.api.deps import RuntimeDep
from app.api.routing import StrictJsonRoute
from app.db import migrations

logger = logging.getLogger(__name__)
router = APIRouter(route_class=StrictJsonRoute, tags=["operations"])

READINESS_TIMEOUT_SECONDS = 2.0


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    reason: str | None = None
    # Set when the schema is behind: the revisions the database has and the code expects.
    current: list[str] | None = None
    head: list[str] | None = None


@router.get("/healthz", operation_id="getHealth", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="The database is reachable and its schema is at head (or ahead, mid-upgrade)",
    response_model=Readiness,
    responses={503: {"description": "Not ready; `reason` says why", "model": Readiness}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            current = await migrations.current_revisions(runtime.engine)
    except Exception as exc:  # any failure to reach the database means "not ready"
        logger.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse(
            {"status": "unavailable", "reason": f"database unreachable ({type(exc).__name__})"},
            status_code=503,
        )
    head = migrations.head_revisions(runtime.settings.migrations_dir)
    state = migrations.schema_state(current, runtime.settings.migrations_dir)
    if not state.can_serve:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": "database schema is not at head; run `palisade migrate`",
                "current": sorted(current),
                "head": sorted(head),
            },
            status_code=503,
        )
    if state is migrations.SchemaState.AHEAD:
        # A newer release migrated the database; this one keeps serving until replaced.
        return JSONResponse({"status": "ok", "current": sorted(current), "head": sorted(head)})
    return JSONResponse({"status": "ok"})
