"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.auth import MetricsScraper
from app.api.deps import RuntimeDep
from app.api.routing import StrictJsonRoute
from app.domain import gauges
from app.observability import metrics

router = APIRouter(route_class=StrictJsonRoute, tags=["operations"])


@router.get("/metrics", include_in_schema=False, dependencies=[MetricsScraper])
async def scrape(runtime: RuntimeDep) -> Response:
    await gauges.refresh(runtime.sessionmaker)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
