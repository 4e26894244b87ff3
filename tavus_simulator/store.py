from __future__ import annotations

import base64
import itertools
import json
import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tavus_simulator.clock import SimClock
from tavus_simulator.config import (
    STOCK_FACE_ID,
    STOCK_SYSTEM_PROMPT,
    Prefill,
    SeededPal,
    SimulatorConfig,
)
from tavus_simulator.errors import CONCURRENCY_LIMIT, TavusError, bad_request, invalid_id
from tavus_simulator.lifecycle import (
    END_ENDPOINT_HIT,
    PARTICIPANT_LEFT,
    ROOM_DELETED,
    Lifecycle,
)
from tavus_simulator.listing import IndexLog, page_window
from tavus_simulator.records import (
    Account,
    ConversationRecord,
    ConversationStatus,
    PalRecord,
)

# Tavus defaults for conversation properties, in seconds.
DEFAULT_MAX_CALL_DURATION = 3600
DEFAULT_PARTICIPANT_LEFT_TIMEOUT = 0
DEFAULT_PARTICIPANT_ABSENT_TIMEOUT = 300

STOCK_PAL_ID = "pb87e71797da"
# How long each ended prefilled conversation ran, in simulated seconds.
PREFILLED_CALL_SECONDS = 30.0
_SLUG = re.compile(r"[^a-z0-9]+")


class Store:
    """Accounts and their PALs and conversations, with Tavus's validation rules.

    Objects are isolated per API key: an account only sees what it created, plus
    the stock (system) PALs. IDs are unique across accounts.
    """

    def __init__(
        self,
        rng: random.Random,
        clock: SimClock,
        config: Callable[[], SimulatorConfig],
        lifecycle: Lifecycle,
    ) -> None:
        self._rng = rng
        self._clock = clock
        self._config = config
        self._lifecycle = lifecycle
        self.accounts: dict[str, Account] = {}
        self.pals: dict[str, PalRecord] = {}
        self.conversations: dict[str, ConversationRecord] = {}
        # Creation order, the tie-break of objects created at the same instant.
        self._seq = itertools.count(1)
        self.index = IndexLog(clock, config)

    def clear(self) -> None:
        self.accounts.clear()
        self.pals.clear()
        self.conversations.clear()
        self._seq = itertools.count(1)
        self.index.clear()

    def account(self, api_key: str) -> Account:
        account = self.accounts.get(api_key)
        if account is None:
            account = Account(api_key)
            for pal_id in self._config().stock_pal_ids:
                pal = self._stock_pal(api_key, pal_id)
                account.pals[pal_id] = pal
                account.pal_listings[None].add(pal)
                account.pal_listings["system"].add(pal)
            self.accounts[api_key] = account
        return account

    def conversation_ended(self, conv: ConversationRecord) -> None:
        if conv.holds_slot:
            conv.holds_slot = False
            self.accounts[conv.account].active_slots -= 1
        listings = self.accounts[conv.account].conversation_listings
        status = conv.status

        def move() -> None:
            listings["active"].discard(conv)
            listings[status].add(conv)

        self.index.submit(move)

    # ids --------------------------------------------------------------------------

    def _new_id(self, prefix: str, hex_digits: int, taken: Callable[[str], bool]) -> str:
        while True:
            candidate = f"{prefix}{self._rng.getrandbits(hex_digits * 4):0{hex_digits}x}"
            if not taken(candidate):
                return candidate

    def _pal_id_taken(self, pal_id: str) -> bool:
        return pal_id in self.pals or pal_id in self._config().stock_pal_ids

    # PALs -------------------------------------------------------------------------

    def create_pal(self, account: Account, body: dict[str, Any], legacy: bool) -> PalRecord:
        name_key = "persona_name" if legacy else "pal_name"
        face_key = "default_replica_id" if legacy else "default_face_id"
        pal_name = _optional_str(body, name_key) or _optional_str(body, "pal_name")
        default_face_id = _optional_str(body, face_key) or _optional_str(body, "default_face_id")
        if not legacy and not default_face_id:
            raise bad_request("default_face_id is required")
        pipeline_mode = _optional_str(body, "pipeline_mode") or "full"
        if pipeline_mode not in ("full", "echo"):
            raise bad_request("pipeline_mode must be one of: full, echo")
        system_prompt = _optional_str(body, "system_prompt")
        if pipeline_mode != "echo" and not system_prompt:
            raise bad_request("system_prompt is required")
        pal_id = self._new_id("p", 11, self._pal_id_taken)
        now = self._clock.wall()
        slug = _SLUG.sub("-", (pal_name or "pal").lower()).strip("-") or "pal"
        pal = PalRecord(
            pal_id=pal_id,
            account=account.api_key,
            pal_type="user",
            pal_name=pal_name,
            system_prompt=system_prompt,
            default_face_id=default_face_id,
            pipeline_mode=pipeline_mode,
            conferencing_email=f"{slug}-{pal_id}@tavusinvite.com",
            created_at=now,
            updated_at=now,
            request=body,
            seq=next(self._seq),
        )
        account.pals[pal_id] = pal
        self.pals[pal_id] = pal
        listings = account.pal_listings

        def show() -> None:
            listings[None].add(pal)
            listings["user"].add(pal)

        self.index.submit(show)
        return pal

    def get_pal(self, account: Account, pal_id: str, legacy: bool) -> PalRecord:
        pal = account.pals.get(pal_id)
        if pal is None or pal.deleted:
            raise invalid_id("persona_id" if legacy else "pal_id")
        return pal

    def list_pals(
        self, account: Account, pal_type: str | None, page: int, limit: int
    ) -> tuple[list[PalRecord], int]:
        """One page of the account's PALs and the listing's ``total_count``."""
        self.index.catch_up()
        config = self._config()
        listing = account.pal_listings[pal_type]
        offset, limit = page_window(config, page, limit)
        return listing.page(offset, limit, config.list_order == "newest_first"), len(listing)

    def delete_pal(self, account: Account, pal_id: str, legacy: bool) -> None:
        pal = account.pals.get(pal_id)
        if pal is not None:
            pal.delete_calls += 1
        if pal is None or pal.deleted or pal.pal_type == "system":
            raise invalid_id("persona_id" if legacy else "pal_id")
        pal.deleted_at = self._clock.wall()
        pal.updated_at = pal.deleted_at
        listings = account.pal_listings

        def hide() -> None:
            listings[None].discard(pal)
            listings["user"].discard(pal)

        self.index.submit(hide)

    def _stock_pal(self, api_key: str, pal_id: str) -> PalRecord:
        now = self._clock.wall()
        return PalRecord(
            pal_id=pal_id,
            account=api_key,
            pal_type="system",
            pal_name="Tavus Stock PAL",
            system_prompt=STOCK_SYSTEM_PROMPT,
            default_face_id=STOCK_FACE_ID,
            pipeline_mode="full",
            conferencing_email=f"stock-{pal_id}@tavusinvite.com",
            created_at=now,
            updated_at=now,
            request={},
            seq=next(self._seq),
        )

    # conversations ----------------------------------------------------------------

    def create_conversation(self, account: Account, body: dict[str, Any]) -> ConversationRecord:
        # One instant for created_at and the timers, so durations come out exact.
        with self._clock.pinned(self._clock.now()):
            return self._create_conversation(account, body)

    def _create_conversation(self, account: Account, body: dict[str, Any]) -> ConversationRecord:
        legacy_pal = "pal_id" not in body and "persona_id" in body
        pal_id = _optional_str(body, "pal_id") or _optional_str(body, "persona_id")
        if not pal_id:
            raise bad_request("pal_id is required")
        pal = account.pals.get(pal_id)
        if pal is None or pal.deleted:
            raise invalid_id("persona_id" if legacy_pal else "pal_id")
        face_id = (
            _optional_str(body, "face_id")
            or _optional_str(body, "replica_id")
            or pal.default_face_id
        )
        if not face_id:
            raise bad_request("face_id is required")
        callback_url = _optional_str(body, "callback_url")
        if callback_url is not None and not callback_url.startswith(("http://", "https://")):
            raise bad_request("callback_url must be an http(s) URL")
        conversational_context = _optional_str(body, "conversational_context")
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise bad_request("properties must be an object")
        max_call_duration = _seconds(properties, "max_call_duration", DEFAULT_MAX_CALL_DURATION)
        left_timeout = _seconds(
            properties, "participant_left_timeout", DEFAULT_PARTICIPANT_LEFT_TIMEOUT
        )
        absent_timeout = _seconds(
            properties, "participant_absent_timeout", DEFAULT_PARTICIPANT_ABSENT_TIMEOUT
        )
        max_participants = body.get("max_participants")
        if max_participants is not None and (
            isinstance(max_participants, bool)
            or not isinstance(max_participants, int)
            or max_participants < 2
        ):
            raise bad_request("max_participants must be an integer >= 2")
        test_mode = bool(body.get("test_mode", False))
        limit = self._config().max_concurrent_conversations
        if not test_mode and limit is not None and account.active_slots >= limit:
            raise TavusError(400, dict(CONCURRENCY_LIMIT))

        conversation_id = self._new_id("c", 15, self.conversations.__contains__)
        now = self._clock.wall()
        base_url = self._config().public_base_url.rstrip("/")
        conv = ConversationRecord(
            conversation_id=conversation_id,
            account=account.api_key,
            pal_id=pal.pal_id,
            face_id=face_id,
            conversation_name=_optional_str(body, "conversation_name"),
            callback_url=callback_url,
            conversation_url=f"{base_url}/{conversation_id}",
            system_prompt=pal.system_prompt or "",
            custom_greeting=_optional_str(body, "custom_greeting"),
            test_mode=test_mode,
            meeting_token=self._meeting_token(conversation_id, absent_timeout)
            if body.get("require_auth")
            else None,
            max_participants=max_participants,
            max_call_duration=max_call_duration,
            participant_left_timeout=left_timeout,
            participant_absent_timeout=absent_timeout,
            created_at=now,
            updated_at=now,
            request=body,
            seq=next(self._seq),
            conversational_context=conversational_context,
        )
        if test_mode:
            # Born ended: the face never joins, nothing is billed, no slot is used.
            conv.status = "ended"
            conv.ended_at = now
        else:
            conv.holds_slot = True
            account.active_slots += 1
        account.conversations[conversation_id] = conv
        self.conversations[conversation_id] = conv
        listings = account.conversation_listings
        status = conv.status

        def show() -> None:
            listings[None].add(conv)
            listings[status].add(conv)

        self.index.submit(show)
        self._lifecycle.begin(conv)
        return conv

    def get_conversation(self, account: Account, conversation_id: str) -> ConversationRecord:
        conv = account.conversations.get(conversation_id)
        if conv is None or conv.deleted:
            raise invalid_id("conversation_id")
        return conv

    def list_conversations(
        self, account: Account, status: str | None, page: int, limit: int
    ) -> tuple[list[ConversationRecord], int]:
        """One page of the account's conversations and the listing's ``total_count``."""
        self.index.catch_up()
        config = self._config()
        listing = account.conversation_listings[status]
        offset, limit = page_window(config, page, limit)
        return listing.page(offset, limit, config.list_order == "newest_first"), len(listing)

    def end_conversation(self, account: Account, conversation_id: str) -> ConversationRecord:
        conv = self.get_conversation(account, conversation_id)
        conv.end_calls += 1
        self._lifecycle.shutdown(conv, END_ENDPOINT_HIT)
        return conv

    def delete_conversation(self, account: Account, conversation_id: str) -> ConversationRecord:
        conv = account.conversations.get(conversation_id)
        if conv is not None:
            conv.delete_calls += 1
        if conv is None or conv.deleted:
            raise invalid_id("conversation_id")
        self._lifecycle.shutdown(conv, ROOM_DELETED)
        conv.deleted_at = self._clock.wall()
        conv.updated_at = conv.deleted_at
        listings = account.conversation_listings
        status: ConversationStatus = conv.status

        def hide() -> None:
            listings[None].discard(conv)
            listings[status].discard(conv)

        self.index.submit(hide)
        return conv

    # PALs with chosen ids, and objects restored from a state file -----------------------

    def seed_pal(self, spec: SeededPal) -> PalRecord | None:
        """Give ``spec``'s account the PAL it names, unless that id exists already (the
        PAL was restored, or deleted since)."""
        if self._pal_id_taken(spec.pal_id):
            return None
        account = self.account(spec.api_key)
        now = self._clock.wall()
        pal = PalRecord(
            pal_id=spec.pal_id,
            account=account.api_key,
            pal_type="user",
            pal_name=spec.pal_name,
            system_prompt=spec.system_prompt,
            default_face_id=spec.default_face_id,
            pipeline_mode="full",
            conferencing_email=f"seeded-{spec.pal_id}@tavusinvite.com",
            created_at=now,
            updated_at=now,
            request=spec.model_dump(exclude={"api_key"}),
            seq=next(self._seq),
        )
        account.pals[pal.pal_id] = pal
        self.pals[pal.pal_id] = pal
        account.pal_listings[None].add(pal)
        account.pal_listings["user"].add(pal)
        return pal

    def restore(self, pals: list[PalRecord], conversations: list[ConversationRecord]) -> None:
        """Take back objects kept from an earlier run, every change already listed."""
        last = max([*(pal.seq for pal in pals), *(conv.seq for conv in conversations)], default=0)
        self._seq = itertools.count(last + 1)
        for pal in pals:
            account = self.account(pal.account)
            account.pals[pal.pal_id] = pal
            self.pals[pal.pal_id] = pal
        for conv in conversations:
            account = self.account(conv.account)
            account.conversations[conv.conversation_id] = conv
            self.conversations[conv.conversation_id] = conv
            if conv.holds_slot:
                account.active_slots += 1
        for account in self.accounts.values():
            user_pals = [pal for pal in account.pals.values() if pal.pal_type == "user"]
            shown = [pal for pal in user_pals if not pal.deleted]
            account.pal_listings[None].merge(shown)
            account.pal_listings["user"].merge(shown)
            kept = [conv for conv in account.conversations.values() if not conv.deleted]
            account.conversation_listings[None].merge(kept)
            for status in ("active", "ended", "error"):
                listing = account.conversation_listings[status]
                listing.merge([conv for conv in kept if conv.status == status])

    # prefilled accounts ---------------------------------------------------------------

    def prefill(self, account: Account, spec: Prefill) -> None:
        """Give the account objects it made before: ended conversations and PALs
        older than anything it has, and active conversations started elsewhere.

        They skip the listing lag (they are old) and the concurrency limit (they
        already run); records are built directly, so thousands take milliseconds.
        """
        now = self._clock.wall()
        user_pals = (pal for pal in account.pals.values() if pal.pal_type == "user")
        before = min(
            [
                now,
                *(conv.created_at for conv in account.conversations.values()),
                *(pal.created_at for pal in user_pals),
            ]
        )
        spacing = timedelta(seconds=spec.spacing_s)
        width = max(5, len(str(max(spec.conversations, spec.pals))))
        self._prefill_pals(account, spec.pals, before, spacing, width)
        self._prefill_conversations(account, spec, before, spacing, width)

    def _prefill_pals(
        self, account: Account, count: int, before: datetime, spacing: timedelta, width: int
    ) -> None:
        made: list[PalRecord] = []
        for number in range(1, count + 1):
            pal_id = self._new_id("p", 11, self._pal_id_taken)
            name = f"old-pal-{number:0{width}d}"
            created = before - spacing * (count - number + 1)
            pal = PalRecord(
                pal_id=pal_id,
                account=account.api_key,
                pal_type="user",
                pal_name=name,
                system_prompt=STOCK_SYSTEM_PROMPT,
                default_face_id=STOCK_FACE_ID,
                pipeline_mode="full",
                conferencing_email=f"old-pal-{number}-{pal_id}@tavusinvite.com",
                created_at=created,
                updated_at=created,
                request={},
                seq=next(self._seq),
            )
            account.pals[pal_id] = pal
            self.pals[pal_id] = pal
            made.append(pal)
        account.pal_listings[None].merge(made)
        account.pal_listings["user"].merge(made)

    def _prefill_conversations(
        self, account: Account, spec: Prefill, before: datetime, spacing: timedelta, width: int
    ) -> None:
        config = self._config()
        pal_id = next(iter(config.stock_pal_ids), STOCK_PAL_ID)
        base_url = config.public_base_url.rstrip("/")
        call = timedelta(seconds=PREFILLED_CALL_SECONDS)
        now = self._clock.wall()
        ended_count = spec.conversations - spec.active_conversations
        ended: list[ConversationRecord] = []
        active: list[ConversationRecord] = []
        for number in range(1, spec.conversations + 1):
            conversation_id = self._new_id("c", 15, self.conversations.__contains__)
            name = f"old-call-{number:0{width}d}"
            running = number > ended_count
            created = now if running else before - spacing * (ended_count - number + 1)
            conv = ConversationRecord(
                conversation_id=conversation_id,
                account=account.api_key,
                pal_id=pal_id,
                face_id=STOCK_FACE_ID,
                conversation_name=name,
                callback_url=None,
                conversation_url=f"{base_url}/{conversation_id}",
                system_prompt=STOCK_SYSTEM_PROMPT,
                custom_greeting=None,
                test_mode=False,
                meeting_token=None,
                max_participants=None,
                max_call_duration=DEFAULT_MAX_CALL_DURATION,
                participant_left_timeout=DEFAULT_PARTICIPANT_LEFT_TIMEOUT,
                participant_absent_timeout=DEFAULT_PARTICIPANT_ABSENT_TIMEOUT,
                created_at=created,
                updated_at=created,
                request={"pal_id": pal_id, "conversation_name": name},
                seq=next(self._seq),
                face_joined_at=created,
                participant_joins=1,
            )
            if running:
                conv.participants.append("outside-participant")
                conv.holds_slot = True
                active.append(conv)
            else:
                conv.status = "ended"
                conv.shutdown_reason = PARTICIPANT_LEFT
                conv.ended_at = conv.updated_at = created + call
                ended.append(conv)
            account.conversations[conversation_id] = conv
            self.conversations[conversation_id] = conv
        account.active_slots += len(active)
        listings = account.conversation_listings
        listings[None].merge([*ended, *active])
        listings["ended"].merge(ended)
        listings["active"].merge(active)
        for conv in active:
            self._lifecycle.begin_ongoing(conv)

    def _meeting_token(self, conversation_id: str, lifetime_s: float) -> str:
        def b64(data: dict[str, Any]) -> str:
            raw = json.dumps(data, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        expires = int(self._clock.wall().timestamp() + lifetime_s)
        signature = f"{self._rng.getrandbits(256):064x}"
        header = b64({"alg": "HS256", "typ": "JWT"})
        return f"{header}.{b64({'r': conversation_id, 'exp': expires})}.{signature}"


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{key} must be a string")
    return value


def _seconds(properties: dict[str, Any], key: str, default: int) -> float:
    value = properties.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise bad_request(f"properties.{key} must be a non-negative integer")
    return float(value)
