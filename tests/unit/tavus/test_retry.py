"""What is retried, how often and how long, per kind of operation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import stamina
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from app.tavus.client import TavusClient
from app.tavus.errors import (
    TavusConcurrencyLimit,
    TavusError,
    TavusInvalidRequest,
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusRateLimited,
    TavusServerError,
    TavusUnauthorized,
    TavusUnreachable,
)
from app.tavus.models import ConversationCreate, PalCreate
from app.tavus.operations import Operation, OperationKind
from app.tavus.retry import DEFAULT_RETRY_POLICY, RETRY_ON, RetryPolicy
from tests.unit.tavus.fake_tavus import (
    API_KEY,
    BASE_URL,
    FakeTavus,
    conversation_json,
    fail,
    ok,
    page_json,
    pal_json,
)

OP = Operation.GET_PAL
# Exact waits: the Retry-After jitter is tested on its own.
EXACT = RetryPolicy(retry_after_jitter=0.0)


def _rate_limited(retry_after: float | None = None) -> TavusRateLimited:
    return TavusRateLimited(OP, message="slow down", status=429, retry_after=retry_after)


def _pal_body() -> PalCreate:
    return PalCreate(default_face_id="r90bbd427f71", pal_name="eph-1", system_prompt="Coach.")


def _conversation_body() -> ConversationCreate:
    return ConversationCreate(pal_id="pcb7a34da5fe", conversation_name="palisade-s-1")


class TestOperationKinds:
    def test_every_operation_has_a_kind(self) -> None:
        assert {op: op.kind for op in Operation} == {
            Operation.CREATE_PAL: OperationKind.CREATE,
            Operation.GET_PAL: OperationKind.READ,
            Operation.LIST_PALS: OperationKind.READ,
            Operation.DELETE_PAL: OperationKind.IDEMPOTENT_WRITE,
            Operation.CREATE_CONVERSATION: OperationKind.CREATE,
            Operation.GET_CONVERSATION: OperationKind.READ,
            Operation.LIST_CONVERSATIONS: OperationKind.READ,
            Operation.END_CONVERSATION: OperationKind.IDEMPOTENT_WRITE,
            Operation.SEND_APP_MESSAGE: OperationKind.AT_MOST_ONCE,
        }

    def test_every_kind_has_a_rule(self) -> None:
        assert set(RETRY_ON) == set(OperationKind)


class TestDecide:
    @pytest.mark.parametrize(
        ("error", "read", "idempotent", "create"),
        [
            (TavusUnreachable(OP, message="x"), True, True, True),
            (TavusOutcomeUnknown(OP, message="x"), True, True, False),
            (TavusServerError(OP, message="x", status=500), True, True, False),
            (_rate_limited(), True, True, True),
            (TavusNotFound(OP, message="x", status=400), False, False, False),
            (TavusInvalidRequest(OP, message="x", status=400), False, False, False),
            (TavusUnauthorized(OP, message="x", status=401), False, False, False),
            (TavusConcurrencyLimit(OP, message="x", status=400), False, False, False),
            (ValueError("not ours"), False, False, False),
        ],
    )
    def test_retry_table(
        self, error: BaseException, read: bool, idempotent: bool, create: bool
    ) -> None:
        policy = RetryPolicy()

        assert policy.decide(OperationKind.READ, error) is read
        assert policy.decide(OperationKind.IDEMPOTENT_WRITE, error) is idempotent
        assert policy.decide(OperationKind.CREATE, error) is create

    def test_retry_after_is_honoured(self) -> None:
        assert EXACT.decide(OperationKind.CREATE, _rate_limited(4.5)) == 4.5

    def test_retry_after_is_capped(self) -> None:
        policy = RetryPolicy(retry_after_cap=30.0, timeout=120.0, retry_after_jitter=0.0)

        assert policy.decide(OperationKind.READ, _rate_limited(600.0)) == 30.0

    def test_retry_after_overrunning_the_budget_gives_up(self) -> None:
        policy = RetryPolicy(timeout=45.0, retry_after_jitter=0.0)

        assert policy.decide(OperationKind.READ, _rate_limited(20.0), elapsed=30.0) is False
        assert policy.decide(OperationKind.READ, _rate_limited(20.0), elapsed=10.0) == 20.0

    def test_zero_retry_after_means_retry_now(self) -> None:
        assert EXACT.decide(OperationKind.READ, _rate_limited(0.0)) == 0.0

    def test_retry_after_gets_jitter_so_callers_told_one_time_spread_out(self) -> None:
        policy = RetryPolicy(retry_after_jitter=0.5)

        waits = {policy.decide(OperationKind.READ, _rate_limited(2.0)) for _ in range(50)}

        assert all(isinstance(w, float) and 2.0 <= w <= 2.5 for w in waits)
        assert len(waits) > 1

    def test_retry_after_jitter_never_overruns_the_budget(self) -> None:
        policy = RetryPolicy(timeout=10.0, retry_after_jitter=5.0)

        for _ in range(50):
            wait = policy.decide(OperationKind.READ, _rate_limited(9.0), elapsed=0.5)
            assert isinstance(wait, float)
            assert 9.0 <= wait <= 9.5

    def test_without_retry_after_uses_backoff(self) -> None:
        assert RetryPolicy().decide(OperationKind.READ, _rate_limited(None)) is True


class TestPolicyObject:
    def test_defaults(self) -> None:
        assert (
            RetryPolicy(
                attempts=4,
                timeout=45.0,
                wait_initial=0.5,
                wait_max=8.0,
                wait_jitter=1.0,
                retry_after_cap=30.0,
                retry_after_jitter=0.5,
            )
            == DEFAULT_RETRY_POLICY
        )

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"attempts": 0},
            {"timeout": -1.0},
            {"wait_max": -0.1},
            {"retry_after_cap": -5.0},
            {"retry_after_jitter": -1.0},
        ],
    )
    def test_rejects_nonsense(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="must"):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]


class TestReadsAndIdempotentWrites:
    async def test_read_retried_on_5xx_then_succeeds(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(fail(503, {"message": "busy"}), fail(500, {}), ok(pal_json()))

        pal = await client.get_pal("pcb7a34da5fe")

        assert pal.pal_id == "pcb7a34da5fe"
        assert len(fake.requests) == 3

    async def test_read_gives_up_after_the_attempt_bound(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(*[fail(502, {"message": "bad gateway"})] * 5)

        with pytest.raises(TavusServerError) as caught:
            await client.get_pal("p1")

        assert len(fake.requests) == 3
        assert caught.value.status == 502
        assert not caught.value.may_have_taken_effect

    @pytest.mark.parametrize(
        "transient",
        [
            httpx.ReadTimeout("timed out"),
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            httpx.ConnectError("refused"),
            httpx.PoolTimeout("pool"),
            fail(429, {"message": "Too Many Requests"}, headers={"Retry-After": "1"}),
        ],
    )
    async def test_list_retried_on_transient_failures(
        self, client: TavusClient, fake: FakeTavus, transient: object
    ) -> None:
        fake.reply(transient, ok(page_json([conversation_json()], 1)))  # type: ignore[arg-type]

        page = await client.list_conversations(status="active")

        assert [c.conversation_id for c in page.data] == ["c123456"]
        assert len(fake.requests) == 2

    async def test_read_timeouts_exhausted_surface_as_outcome_unknown(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(*[httpx.ReadTimeout("timed out")] * 3)

        with pytest.raises(TavusOutcomeUnknown) as caught:
            await client.get_conversation("c1")

        assert len(fake.requests) == 3
        # A read that never answered changed nothing at Tavus.
        assert not caught.value.may_have_taken_effect

    async def test_read_not_retried_on_4xx(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(401, {"message": "Invalid access token"}))

        with pytest.raises(TavusUnauthorized):
            await client.list_pals()

        assert len(fake.requests) == 1

    async def test_delete_retried_after_a_lost_response_then_not_found(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        # The first delete went through but its answer was lost; the retry finds it gone.
        fake.reply(httpx.ReadTimeout("timed out"), fail(400, {"error": "Invalid pal_id"}))

        with pytest.raises(TavusNotFound):
            await client.delete_pal("pcb7a34da5fe")

        assert [r.method for r in fake.requests] == ["DELETE", "DELETE"]

    async def test_end_retried_on_5xx(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(502, {}), ok())

        await client.end_conversation("c1")

        assert len(fake.requests) == 2

    async def test_end_gives_up_and_may_have_ended(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(*[httpx.ReadError("reset")] * 3)

        with pytest.raises(TavusOutcomeUnknown) as caught:
            await client.end_conversation("c1")

        assert len(fake.requests) == 3
        assert caught.value.may_have_taken_effect

    async def test_retry_in_the_middle_of_a_scan(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(
            ok(page_json([pal_json("a"), pal_json("b")], 3)),
            fail(500, {}),
            ok(page_json([pal_json("c", pal_name="eph-1")], 3)),
        )

        pal = await client.find_pal_by_name("eph-1")

        assert pal is not None
        assert pal.pal_id == "c"
        assert [r.url.params["page"] for r in fake.requests] == ["1", "2", "2"]


class TestCreates:
    @pytest.mark.parametrize(
        "lost",
        [
            httpx.ReadTimeout("timed out"),
            httpx.WriteTimeout("timed out"),
            httpx.ReadError("connection reset by peer"),
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
        ],
    )
    async def test_conversation_lost_answer_is_not_retried(
        self, client: TavusClient, fake: FakeTavus, lost: httpx.RequestError
    ) -> None:
        fake.reply(lost, ok(conversation_json()))

        with pytest.raises(TavusOutcomeUnknown) as caught:
            await client.create_conversation(_conversation_body())

        assert len(fake.requests) == 1
        assert caught.value.may_have_taken_effect
        assert caught.value.operation is Operation.CREATE_CONVERSATION

    async def test_pal_lost_answer_is_not_retried(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(httpx.ReadTimeout("timed out"), ok(pal_json()))

        with pytest.raises(TavusOutcomeUnknown) as caught:
            await client.create_pal(_pal_body())

        assert len(fake.requests) == 1
        assert caught.value.may_have_taken_effect

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    async def test_5xx_is_not_retried(
        self, client: TavusClient, fake: FakeTavus, status: int
    ) -> None:
        fake.reply(fail(status, {"message": "oops"}), ok(conversation_json()))

        with pytest.raises(TavusServerError) as caught:
            await client.create_conversation(_conversation_body())

        assert len(fake.requests) == 1
        assert caught.value.may_have_taken_effect

    async def test_retried_when_the_connection_never_opened(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(httpx.ConnectError("refused"), ok(conversation_json()))

        conversation = await client.create_conversation(_conversation_body())

        assert conversation.conversation_id == "c123456"
        assert len(fake.requests) == 2

    async def test_pal_retried_on_connect_and_pool_timeouts(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(httpx.ConnectTimeout("connect"), httpx.PoolTimeout("pool"), ok(pal_json()))

        pal = await client.create_pal(_pal_body())

        assert pal.pal_id == "pcb7a34da5fe"
        assert len(fake.requests) == 3
        assert fake.body(0) == fake.body(2)

    async def test_unreachable_after_the_bound_took_no_effect(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(*[httpx.ConnectError("refused")] * 3)

        with pytest.raises(TavusUnreachable) as caught:
            await client.create_conversation(_conversation_body())

        assert len(fake.requests) == 3
        assert not caught.value.may_have_taken_effect

    async def test_retried_on_429(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(
            fail(429, {"message": "Too Many Requests"}, headers={"Retry-After": "2"}),
            ok(conversation_json()),
        )

        conversation = await client.create_conversation(_conversation_body())

        assert conversation.conversation_id == "c123456"
        assert len(fake.requests) == 2

    async def test_429_gives_up_after_the_bound(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(*[fail(429, {}, headers={"Retry-After": "1"})] * 4)

        with pytest.raises(TavusRateLimited) as caught:
            await client.create_pal(_pal_body())

        assert len(fake.requests) == 3
        assert caught.value.retry_after == 1.0
        assert not caught.value.may_have_taken_effect

    async def test_concurrency_limit_is_not_retried(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(fail(400, {"message": "User has reached maximum concurrent conversations"}))

        with pytest.raises(TavusConcurrencyLimit):
            await client.create_conversation(_conversation_body())

        assert len(fake.requests) == 1

    async def test_retry_after_beyond_the_budget_is_not_waited_for(
        self, http: httpx.AsyncClient, fake: FakeTavus
    ) -> None:
        client = TavusClient(
            http, API_KEY, base_url=BASE_URL, retry=RetryPolicy(timeout=10.0, retry_after_cap=30)
        )
        fake.reply(fail(429, {}, headers={"Retry-After": "20"}), ok(conversation_json()))

        with pytest.raises(TavusRateLimited):
            await client.create_conversation(_conversation_body())

        assert len(fake.requests) == 1


@pytest.fixture
def real_waits() -> Iterator[list[RetryDetails]]:
    """Stamina's real retry loop (not its test mode), recording every scheduled wait."""
    recorded: list[RetryDetails] = []

    def record(details: RetryDetails) -> None:
        recorded.append(details)

    previous = get_on_retry_hooks()
    set_on_retry_hooks([record])
    try:
        with stamina.set_testing(False):
            yield recorded
    finally:
        set_on_retry_hooks(previous)


class TestWaitsThroughStamina:
    """These run stamina's real loop; a wrong wait shows up as a slow call and a failure."""

    async def test_retry_after_replaces_the_backoff(
        self, http: httpx.AsyncClient, fake: FakeTavus, real_waits: list[RetryDetails]
    ) -> None:
        # Backoff alone would wait at least 5 s; the header says 0.
        policy = RetryPolicy(
            attempts=2, wait_initial=5.0, wait_max=5.0, wait_jitter=0.0, retry_after_jitter=0.0
        )
        client = TavusClient(http, API_KEY, base_url=BASE_URL, retry=policy)
        fake.reply(fail(429, {}, headers={"Retry-After": "0"}), ok(pal_json()))

        await asyncio.wait_for(client.get_pal("p1"), timeout=2.0)

        assert [d.wait_for for d in real_waits] == [0.0]

    async def test_retry_after_is_capped(
        self, http: httpx.AsyncClient, fake: FakeTavus, real_waits: list[RetryDetails]
    ) -> None:
        policy = RetryPolicy(attempts=2, retry_after_cap=0.0, retry_after_jitter=0.0)
        client = TavusClient(http, API_KEY, base_url=BASE_URL, retry=policy)
        fake.reply(fail(429, {}, headers={"Retry-After": "3600"}), ok(pal_json()))

        await asyncio.wait_for(client.get_pal("p1"), timeout=2.0)

        assert [d.wait_for for d in real_waits] == [0.0]

    async def test_backoff_and_attempt_bound(
        self, http: httpx.AsyncClient, fake: FakeTavus, real_waits: list[RetryDetails]
    ) -> None:
        policy = RetryPolicy(attempts=3, wait_initial=0.0, wait_max=0.0, wait_jitter=0.0)
        client = TavusClient(http, API_KEY, base_url=BASE_URL, retry=policy)
        fake.reply(*[fail(503, {})] * 5)

        with pytest.raises(TavusServerError):
            await asyncio.wait_for(client.get_pal("p1"), timeout=2.0)

        assert len(fake.requests) == 3
        assert len(real_waits) == 2
        assert all(isinstance(d.caused_by, TavusServerError) for d in real_waits)

    async def test_retry_logs_carry_no_key(
        self, http: httpx.AsyncClient, fake: FakeTavus, real_waits: list[RetryDetails]
    ) -> None:
        policy = RetryPolicy(attempts=2, wait_initial=0.0, wait_max=0.0, wait_jitter=0.0)
        client = TavusClient(http, API_KEY, base_url=BASE_URL, retry=policy)
        fake.reply(httpx.ConnectError("refused"), ok(pal_json()))

        await client.get_pal("p1")

        (details,) = real_waits
        assert API_KEY not in repr(details.args) + repr(details.kwargs)
        assert API_KEY not in repr(details.caused_by)


def test_errors_are_tavus_errors() -> None:
    for classes in RETRY_ON.values():
        assert all(issubclass(c, TavusError) for c in classes)
