"""ASGI middleware that must see requests before FastAPI parses them."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, problem


class BodySizeLimit:
    """Refuse bodies above a cap with 413 before they are buffered, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Read outside any route's error handling: answered here.
            if not response_started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        rendered = problem(too_large(self.max_bytes))
        headers = [
            (name.lower().encode(), value.encode()) for name, value in rendered.headers.items()
        ]
        await send(
            {
                "type": "http.response.start",
                "status": rendered.status,
                "headers": [
                    (b"content-type", rendered.media_type.encode()),
                    (b"content-length", str(len(rendered.body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": rendered.body})


def too_large(max_bytes: int) -> PayloadTooLarge:
    # The rest of the body is never read: the connection cannot be reused.
    return PayloadTooLarge(
        f"request bodies are limited to {max_bytes} bytes", headers={"Connection": "close"}
    )


class BodyTooLarge(HTTPException):
    """A body that outgrew the limit while being read (sent chunked, or longer than it
    said). An ``HTTPException``, because FastAPI's body parsing passes those through
    (anything else becomes a generic 400) to the one handler of ``app.api.problems``."""

    def __init__(self, max_bytes: int) -> None:
        error = too_large(max_bytes)
        super().__init__(error.status_code, detail=error.detail, headers=error.headers)
