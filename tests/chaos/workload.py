"""The clients: concurrent starts through the public API, each with its own
Idempotency-Key and retried with that key on 5xx, 409, timeouts and dropped connections,
moving to another replica on each retry; some sessions are ended explicitly, the others
end on their own."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.invariants import ClientStart
from tests.chaos.plan import StartPlan, start_plan

REQUEST_TIMEOUT_S = 20.0
# Admission refusals are not stored: the same key may try again.
CAP_RETRIES = 2
RETRY_PAUSE_S = 0.25
# A tenant at its cap says come back in 5 s; its sessions last a few seconds at most.
MAX_PAUSE_S = 1.0


@dataclass
class StartRecord:
    plan: StartPlan
    # One entry per attempt: the status code, or the transport error's name.
    answers: list[str] = field(default_factory=list)
    session_ids: set[str] = field(default_factory=set)
    conversation_ids: set[str] = field(default_factory=set)
    outcome: str = "unfinished"

    def client_start(self) -> ClientStart:
        return ClientStart(
            tenant_id=self.plan.tenant_id,
            idempotency_key=self.plan.idempotency_key,
            session_ids=frozenset(self.session_ids),
            conversation_ids=frozenset(self.conversation_ids),
            mismatched=self.outcome == "refused:idempotency_key_mismatch",
        )


@dataclass
class Tally:
    starts: list[StartRecord] = field(default_factory=list)
    end_answers: Counter[str] = field(default_factory=Counter)
    ends_requested: int = 0

    def outcomes(self) -> Counter[str]:
        return Counter(record.outcome for record in self.starts)

    def answers(self) -> Counter[str]:
        return Counter(answer for record in self.starts for answer in record.answers)


class Workload:
    def __init__(
        self,
        replica_urls: Sequence[str],
        api_keys: Mapping[str, str],
        *,
        seed: int,
        clients: int,
        start_budget_s: float,
    ) -> None:
        self._urls = list(replica_urls)
        self._api_keys = dict(api_keys)
        self._seed = seed
        self._clients = clients
        self._budget = start_budget_s
        self._indexes = itertools.count()
        self.tally = Tally()

    async def run(self, stop_starting_at: float) -> None:
        """Start sessions until the monotonic instant ``stop_starting_at``, then see every
        start and end already under way through."""
        limits = httpx.Limits(max_connections=4 * self._clients)
        async with (
            httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as http,
            asyncio.TaskGroup() as group,
        ):
            for _ in range(self._clients):
                group.create_task(self._client(http, group, stop_starting_at))

    async def _client(
        self, http: httpx.AsyncClient, group: asyncio.TaskGroup, stop_starting_at: float
    ) -> None:
        while time.monotonic() < stop_starting_at:
            plan = start_plan(self._seed, next(self._indexes), len(self._urls))
            await asyncio.sleep(plan.think_s)
            record = await self._start(http, plan)
            self.tally.starts.append(record)
            if record.outcome == "created" and plan.end_after_s is not None:
                group.create_task(self._end_later(http, plan, next(iter(record.session_ids))))

    def _headers(self, plan: StartPlan) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_keys[plan.tenant_id]}"}

    async def _start(self, http: httpx.AsyncClient, plan: StartPlan) -> StartRecord:
        record = StartRecord(plan)
        headers = {**self._headers(plan), "Idempotency-Key": plan.idempotency_key}
        give_up_at = time.monotonic() + self._budget
        refusals = 0
        for attempt in itertools.count():
            url = self._urls[(plan.replica + attempt) % len(self._urls)]
            pause = RETRY_PAUSE_S
            try:
                response = await http.post(f"{url}/sessions", json=plan.body, headers=headers)
            except httpx.TransportError as error:
                record.answers.append(type(error).__name__)
            else:
                record.answers.append(str(response.status_code))
                body = _json(response)
                _note_ids(record, response.status_code, body)
                outcome = _final_outcome(response, body)
                if outcome == "rejected" and refusals < CAP_RETRIES:
                    refusals += 1
                elif outcome is not None:
                    record.outcome = outcome
                    return record
                pause = max(pause, _retry_after(response))
            if time.monotonic() + pause > give_up_at:
                record.outcome = "gave_up"
                return record
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def _end_later(self, http: httpx.AsyncClient, plan: StartPlan, session_id: str) -> None:
        assert plan.end_after_s is not None
        # The user talks for a while, then leaves.
        await asyncio.sleep(plan.end_after_s)
        self.tally.ends_requested += 1
        give_up_at = time.monotonic() + self._budget
        for attempt in itertools.count(1):
            url = self._urls[(plan.replica + attempt) % len(self._urls)]
            try:
                response = await http.post(
                    f"{url}/sessions/{session_id}/end", headers=self._headers(plan)
                )
            except httpx.TransportError as error:
                answer = type(error).__name__
            else:
                answer = str(response.status_code)
                # 409: still being created (a resumed start); 5xx: retried like a start.
                if response.status_code < 500 and response.status_code != 409:
                    self.tally.end_answers[answer] += 1
                    return
            if time.monotonic() + RETRY_PAUSE_S > give_up_at:
                self.tally.end_answers[f"gave_up after {answer}"] += 1
                return
            await asyncio.sleep(RETRY_PAUSE_S)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _note_ids(record: StartRecord, status: int, body: dict[str, Any]) -> None:
    session_id = body.get("id") if status == 201 else body.get("session_id")
    if isinstance(session_id, str):
        record.session_ids.add(session_id)
    conversation_id = body.get("conversation_id")
    if status == 201 and isinstance(conversation_id, str):
        record.conversation_ids.add(conversation_id)


def _final_outcome(response: httpx.Response, body: dict[str, Any]) -> str | None:
    """What one answer means for the start, or None when the key must be tried again."""
    status = response.status_code
    if status == 201:
        return "created"
    if status == 429 and body.get("code") == "tenant_concurrency_limit":
        return "rejected"
    if status == 409:
        return None  # the first attempt is still running, or a dead one's lease has not run out
    if status >= 500:
        # A failure after something was sent to Tavus is stored and replayed: final.
        replayed = response.headers.get("idempotent-replayed") == "true"
        return f"failed:{body.get('code', status)}" if replayed else None
    return f"refused:{body.get('code', status)}"


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("retry-after", "0")), MAX_PAUSE_S)
    except ValueError:
        return 0.0
