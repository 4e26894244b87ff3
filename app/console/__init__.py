"""The operator console: server-rendered pages under ``/console``, behind the admin
token (docs/console.md).

An API-layer package: its routes read pages through ``services`` (which reads through
the repositories) and act through the domain services the API uses.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from app.console.auth import PREFIX
from app.console.routes import router


def install(api: FastAPI) -> None:
    """Serve the console's pages and its stylesheet."""
    # Before the router: its catch-all page would otherwise answer for these files.
    api.mount(
        f"{PREFIX}/static",
        StaticFiles(packages=[("app.console", "static")]),
        name="console-static",
    )
    api.include_router(router)
