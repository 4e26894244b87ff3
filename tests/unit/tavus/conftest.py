"""Clients for these tests, wired to a scripted Tavus through httpx.MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import stamina

from app.tavus.client import TavusClient
from app.tavus.retry import RetryPolicy
from tests.unit.tavus.fake_tavus import API_KEY, BASE_URL, FakeTavus


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    # No backoff sleeps; cap=True keeps each policy's own attempt bound in force.
    with stamina.set_testing(True, attempts=1000, cap=True):
        yield


@pytest.fixture
def fake() -> FakeTavus:
    return FakeTavus()


@pytest.fixture
async def http(fake: FakeTavus) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handle)) as client:
        yield client


@pytest.fixture
def policy() -> RetryPolicy:
    return RetryPolicy(attempts=3)


@pytest.fixture
def client(http: httpx.AsyncClient, policy: RetryPolicy) -> TavusClient:
    return TavusClient(http, API_KEY, base_url=BASE_URL, retry=policy, page_size=2)
