from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from tavus_simulator.calllog import CallLog
from tavus_simulator.faults import FaultTable

_HEADERS = {"content-type": "application/json", "user-agent": "palisade-tavus-simulator"}


@dataclass(frozen=True, slots=True)
class Delivery:
    conversation_id: str
    event_type: str
    url: str
    body: bytes
    copies: int
    fault: str | None


class WebhookSender:
    """Delivers webhook events with one long-lived ``httpx.AsyncClient``.

    Events of one conversation go out one after another in creation order (a
    "lane"); different conversations do not wait for each other. Delivery is
    attempted once: like Tavus, the simulator documents no retries.
    """

    def __init__(self, faults: FaultTable, log: CallLog, timeout_s: Callable[[], float]) -> None:
        self._faults = faults
        self._log = log
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lane_tails: dict[str, asyncio.Task[None]] = {}
        self._held: dict[str, tuple[Delivery, asyncio.Task[None]]] = {}

    @property
    def running(self) -> bool:
        return self._client is not None

    def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout_s(),
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )

    async def aclose(self) -> None:
        self.cancel_pending()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def cancel_pending(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._lane_tails.clear()
        self._held.clear()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, max_wait_s: float = 10.0) -> None:
        """Wait until every scheduled delivery (including delayed/held ones) is done."""
        deadline = asyncio.get_running_loop().time() + max_wait_s
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._tasks)} webhook deliveries still pending")
            await asyncio.wait(set(self._tasks), timeout=remaining)

    def submit(self, conversation_id: str, url: str, event: dict[str, Any]) -> None:
        plan = self._faults.draw_webhook()
        label = plan.label if plan else None
        if plan is not None and plan.drop:
            self._log.record(
                "webhook",
                "POST",
                url,
                None,
                0.0,
                label,
                object_id=conversation_id,
                event_type=str(event.get("event_type")),
            )
            return
        delivery = Delivery(
            conversation_id=conversation_id,
            event_type=str(event.get("event_type")),
            url=url,
            body=json.dumps(event).encode(),
            copies=plan.copies if plan else 0,
            fault=label,
        )
        if plan is not None and plan.delay_ms is not None:
            self._spawn(self._deliver_later(delivery, plan.delay_ms / 1000.0))
            return
        if plan is not None and plan.reorder is not None:
            previous = self._held.pop(conversation_id, None)
            if previous is not None:
                previous[1].cancel()
                self._enqueue(previous[0])
            flush = self._spawn(self._release_later(conversation_id, plan.reorder.max_hold_ms))
            self._held[conversation_id] = (delivery, flush)
            return
        self._enqueue(delivery)
        held = self._held.pop(conversation_id, None)
        if held is not None:
            held[1].cancel()
            self._enqueue(held[0])

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _enqueue(self, delivery: Delivery) -> None:
        lane = delivery.conversation_id
        task = self._spawn(self._after(self._lane_tails.get(lane), delivery))
        self._lane_tails[lane] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._lane_tails.get(lane) is done:
                del self._lane_tails[lane]

        task.add_done_callback(forget)

    async def _after(self, previous: asyncio.Task[None] | None, delivery: Delivery) -> None:
        if previous is not None and not previous.done():
            # asyncio.wait never raises the awaited task's error or cancellation.
            await asyncio.wait({previous})
        await self._post_all(delivery)

    async def _deliver_later(self, delivery: Delivery, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self._post_all(delivery)

    async def _release_later(self, conversation_id: str, max_hold_ms: float) -> None:
        await asyncio.sleep(max_hold_ms / 1000.0)
        held = self._held.pop(conversation_id, None)
        if held is not None:
            self._enqueue(held[0])

    async def _post_all(self, delivery: Delivery) -> None:
        for _ in range(1 + delivery.copies):
            await self._post(delivery)

    async def _post(self, delivery: Delivery) -> None:
        if self._client is None:
            self.start()
        assert self._client is not None
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(
                delivery.url, content=delivery.body, headers=_HEADERS, timeout=self._timeout_s()
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._log.record(
            "webhook",
            "POST",
            delivery.url,
            status,
            (time.perf_counter() - started) * 1000.0,
            delivery.fault,
            object_id=delivery.conversation_id,
            event_type=delivery.event_type,
            error=error,
        )
