"""One Tavus HTTP exchange: auth, timeouts, error mapping and retries."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Final, Protocol, TypeVar

import httpx
from pydantic import JsonValue, SecretStr

from app.tavus.errors import TavusError, error_from_response, error_from_transport
from app.tavus.operations import Operation, OperationKind
from app.tavus.retry import RetryPolicy

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ExchangeObserver(Protocol):
    """Sees every exchange with Tavus (each retry on its own): metrics, traces."""

    def __call__(self, operation: Operation, exchange: Awaitable[T]) -> Awaitable[T]: ...


def _unobserved(operation: Operation, exchange: Awaitable[T]) -> Awaitable[T]:
    return exchange


DEFAULT_BASE_URL: Final = "https://tavusapi.com"
# Connect and pool waits fail fast (nothing was sent, so they are safe to retry); the
# read timeout is longer because creating a conversation starts a room on Tavus's side.
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=3.0, read=10.0, write=10.0, pool=3.0)


class TavusHTTP:
    """Sends requests to Tavus through a shared ``httpx.AsyncClient`` it does not own."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy,
        observe: ExchangeObserver | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an absolute http(s) URL")
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry
        self.observe: ExchangeObserver = observe or _unobserved

    def with_retry(self, retry: RetryPolicy) -> TavusHTTP:
        return TavusHTTP(
            self.http,
            base_url=self.base_url,
            timeout=self.timeout,
            retry=retry,
            observe=self.observe,
        )

    async def request(
        self,
        operation: Operation,
        api_key: SecretStr,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        json: JsonValue = None,
        content: bytes | None = None,
        kind: OperationKind | None = None,
    ) -> httpx.Response:
        """Send one logical call, retried as ``retry`` allows for its operation's kind (or
        ``kind``, when this call may be retried differently). ``content``: a JSON body
        already encoded, sent as it is."""

        async def attempt() -> httpx.Response:
            exchange = self._send_once(operation, api_key, method, path, params, json, content)
            return await self.observe(operation, exchange)

        return await self.retry.run(kind or operation.kind, attempt)

    async def _send_once(
        self,
        operation: Operation,
        api_key: SecretStr,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
        json: JsonValue,
        content: bytes | None,
    ) -> httpx.Response:
        headers = {"x-api-key": api_key.get_secret_value(), "accept": "application/json"}
        if content is not None:
            headers["content-type"] = "application/json"
        error: TavusError
        try:
            response = await self.http.request(
                method,
                self.base_url + path,
                params=params,
                json=json,
                content=content,
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.RequestError as exc:
            error = error_from_transport(operation, exc)
        else:
            if response.is_success:
                logger.debug(
                    "tavus %s %s %s -> %s", operation.value, method, path, response.status_code
                )
                return response
            error = error_from_response(operation, response)
        # Raised outside the except block so the httpx exception, whose request carries
        # the API key header, is not chained onto the error.
        logger.info("tavus %s %s %s failed: %s", operation.value, method, path, error)
        raise error
