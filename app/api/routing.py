"""The route class of every Palisade router: JSON bodies go through the strict decoder.

FastAPI parses a route's JSON body with ``await request.json()``; the request handed to
each route here decodes with :func:`app.domain.strict_json.loads` instead of the
standard library's lenient ``json.loads``. Its error is a ``JSONDecodeError``, which
FastAPI reports as ``json_invalid`` and ``app.api.problems`` renders as 400
``malformed_json``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from app.domain import strict_json


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json.loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_json_handler
