"""Pages dev mode serves beside the API: the browser example of docs/frontends.md."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from app.api.routing import StrictJsonRoute

EXAMPLE_PAGE = resources.files("app") / "static" / "frontend-example.html"

router = APIRouter(route_class=StrictJsonRoute, prefix="/dev", include_in_schema=False)


@router.get("/example.html")
async def example_page() -> HTMLResponse:
    """The example page, on Palisade's own origin: its calls need no CORS."""
    return HTMLResponse(EXAMPLE_PAGE.read_text(encoding="utf-8"))
