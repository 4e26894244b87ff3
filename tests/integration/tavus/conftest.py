"""Palisade's real Tavus client against the real simulator, over a loopback socket.

Everything the contract tests need: clients built the way the runtime builds them (one
shared ``httpx.AsyncClient``, explicit timeouts, a bounded retry policy), a record of
the requests the client put on the wire, and small request-body builders.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pytest

from app.tavus.client import DEFAULT_PAGE_SIZE, TavusClient
from app.tavus.models import ConversationCreate, PalCreate
from app.tavus.retry import RetryPolicy
from tavus_simulator.records import CallRecord
from tests.support.stack import FACE_ID, FAST_RETRY, SimulatorHandle

API_KEY = "contract-key-a"
OTHER_KEY = "contract-key-b"
# Retries must be visible but cheap: three attempts with millisecond backoff.
RETRY = FAST_RETRY
TIMEOUT = httpx.Timeout(1.0, connect=1.0)


def pal_body(name: str = "Contract Coach", **fields: Any) -> PalCreate:
    values: dict[str, Any] = {
        "pal_name": name,
        "default_face_id": FACE_ID,
        "system_prompt": "You are a calm coach.",
        **fields,
    }
    return PalCreate.model_validate(values)


def conversation_body(pal_id: str, name: str | None = None, **fields: Any) -> ConversationCreate:
    return ConversationCreate.model_validate(
        {"pal_id": pal_id, "conversation_name": name, **fields}
    )


def statuses(records: list[CallRecord]) -> list[int | None]:
    return [record.status for record in records]


@dataclass
class Wire:
    """Every request the shared ``httpx.AsyncClient`` started, including ones that
    never connected, so attempts are countable even when no server saw them."""

    sent: list[httpx.Request] = field(default_factory=list)

    async def record(self, request: httpx.Request) -> None:
        self.sent.append(request)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.sent if r.method == method and r.url.path == path)


class ClientFactory(Protocol):
    def __call__(
        self,
        *,
        base_url: str | None = None,
        api_key: str = API_KEY,
        retry: RetryPolicy = RETRY,
        timeout: httpx.Timeout = TIMEOUT,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> TavusClient: ...


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
async def http(wire: Wire) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(event_hooks={"request": [wire.record]}) as client:
        yield client


@pytest.fixture
def make_client(http: httpx.AsyncClient, simulator: SimulatorHandle) -> ClientFactory:
    def make(
        *,
        base_url: str | None = None,
        api_key: str = API_KEY,
        retry: RetryPolicy = RETRY,
        timeout: httpx.Timeout = TIMEOUT,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> TavusClient:
        return TavusClient(
            http,
            api_key,
            base_url=base_url or simulator.url,
            retry=retry,
            timeout=timeout,
            page_size=page_size,
        )

    return make


@pytest.fixture
def tavus(make_client: ClientFactory) -> TavusClient:
    return make_client()
