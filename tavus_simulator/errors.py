from __future__ import annotations

from typing import Any

INVALID_ACCESS_TOKEN = {"message": "Invalid access token"}
CONCURRENCY_LIMIT = {"message": "User has reached maximum concurrent conversations"}
# send-app-message's documented error texts, answered as {"error": …}.
APP_MESSAGES_ACTIVE_ONLY = "App messages can only be sent to active conversations."
APP_MESSAGES_ROOM_GONE = "The conversation's room is no longer available."
APP_MESSAGES_TOO_MANY = "Too many requests"


class TavusError(Exception):
    """A Tavus API error answered with exactly this status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def invalid_id(kind: str) -> TavusError:
    return TavusError(400, {"error": f"Invalid {kind}"})


def bad_request(message: str) -> TavusError:
    return TavusError(400, {"message": message})


class ControlError(Exception):
    """A misuse of the simulator's control API (unknown id, illegal transition)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
