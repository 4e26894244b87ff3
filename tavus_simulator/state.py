from __future__ import annotations

import random
from typing import Any

from tavus_simulator.calllog import CallLog
from tavus_simulator.clock import SimClock, iso_z
from tavus_simulator.config import RUNTIME_FIELDS, Prefill, SimulatorConfig
from tavus_simulator.errors import ControlError
from tavus_simulator.faults import Fault, FaultTable, parse_fault
from tavus_simulator.lifecycle import Lifecycle
from tavus_simulator.persistence import StateFile
from tavus_simulator.records import CallRecord, ConversationRecord, PalRecord
from tavus_simulator.store import Store
from tavus_simulator.timers import TimerQueue
from tavus_simulator.webhooks import WebhookSender


class Simulator:
    """In-memory Tavus account state plus the controls tests and operators use.

    Everything runs on one event loop; none of it is thread-safe. The HTTP control
    API under ``/_sim`` is a thin layer over these methods.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self._initial_config = (config or SimulatorConfig()).model_copy(deep=True)
        self.config = self._initial_config.model_copy(deep=True)
        # A drawn seed is kept so that a failing run can be replayed with it.
        self.seed = (
            self.config.seed
            if self.config.seed is not None
            else random.SystemRandom().randrange(2**32)
        )
        self.rng = random.Random(self.seed)
        self.clock = SimClock(self.config.time_scale)
        self.timers = TimerQueue(self.clock)
        self.faults = FaultTable(self.rng)
        self.calls = CallLog(self.clock, self.config.call_log_limit)
        self.webhooks = WebhookSender(
            self.faults, self.calls, lambda: self.config.webhook_timeout_s
        )
        self.lifecycle = Lifecycle(
            self.clock, self.timers, self.webhooks, lambda: self.config, self._conversation_ended
        )
        self.store = Store(self.rng, self.clock, lambda: self.config, self.lifecycle)
        self.state_file = StateFile(self.config.state_file) if self.config.state_file else None
        if self.state_file is None or not self.state_file.load(self):
            self._prefill_from_config()
        self._seed_pals()

    def _conversation_ended(self, conv: ConversationRecord) -> None:
        self.store.conversation_ended(conv)

    def _prefill_from_config(self) -> None:
        for spec in self.config.prefill:
            self.prefill(spec)

    def _seed_pals(self) -> None:
        for spec in self.config.pals:
            self.store.seed_pal(spec)

    # background tasks -------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the timer task and webhook client on the running loop if needed."""
        if not self.timers.running:
            self.timers.start()
            self.webhooks.start()
            if self.state_file is not None:
                self.state_file.start(self)

    async def start(self) -> None:
        self.ensure_started()

    async def aclose(self) -> None:
        """Stop timers, cancel pending webhook deliveries, close the HTTP client, and
        save the state when it is kept in a file."""
        await self.timers.aclose()
        await self.webhooks.aclose()
        if self.state_file is not None:
            await self.state_file.aclose(self)

    # inspection -------------------------------------------------------------------

    def pal(self, pal_id: str) -> PalRecord:
        pal = self.store.pals.get(pal_id)
        if pal is None:
            raise ControlError(404, f"unknown pal {pal_id}")
        return pal

    def conversation(self, conversation_id: str) -> ConversationRecord:
        conv = self.store.conversations.get(conversation_id)
        if conv is None:
            raise ControlError(404, f"unknown conversation {conversation_id}")
        return conv

    def call_log(self, operation: str | None = None, since_seq: int = 0) -> list[CallRecord]:
        return self.calls.entries(operation, since_seq)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (what ``GET /_sim/state`` returns)."""
        return {
            "seed": self.seed,
            "sim_time_s": self.clock.now(),
            "wall_time": iso_z(self.clock.wall()),
            "config": self.config.model_dump(mode="json"),
            "accounts": {
                key: {"active_conversations": account.active_slots}
                for key, account in self.store.accounts.items()
            },
            "pals": [pal.control_json() for pal in self.store.pals.values()],
            "conversations": [conv.control_json() for conv in self.store.conversations.values()],
            "faults": self.faults.snapshot(),
            "webhooks_pending": self.webhooks.pending,
        }

    # controls ---------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> None:
        """Back to a fresh start: no objects, calls or faults, the configuration the
        simulator was created with, the generator reseeded, the clock at zero."""
        self.config = self._initial_config.model_copy(deep=True)
        self.clock.set_time_scale(self.config.time_scale)
        self.timers.clear()
        self.webhooks.cancel_pending()
        self.store.clear()
        self.calls.clear()
        self.faults.clear()
        self.lifecycle.reset()
        if seed is not None:
            self.seed = seed
        self.rng.seed(self.seed)
        self.clock.reset()
        self._prefill_from_config()
        self._seed_pals()

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change runtime settings (see ``config.RUNTIME_FIELDS``)."""
        unknown = set(changes) - RUNTIME_FIELDS
        if unknown:
            raise ControlError(400, f"not changeable at runtime: {sorted(unknown)}")
        updated = SimulatorConfig.model_validate({**self.config.model_dump(), **changes})
        if updated.time_scale != self.config.time_scale:
            self.clock.set_time_scale(updated.time_scale)
        self.config = updated
        return updated

    def prefill(self, spec: Prefill | dict[str, Any]) -> dict[str, Any]:
        """Fill an account with objects it made before (see ``config.Prefill``)."""
        spec = spec if isinstance(spec, Prefill) else Prefill.model_validate(spec)
        self.store.prefill(self.store.account(spec.api_key), spec)
        return {
            "api_key": spec.api_key,
            "conversations": spec.conversations,
            "active_conversations": spec.active_conversations,
            "pals": spec.pals,
        }

    def advance(self, sim_seconds: float) -> None:
        """Jump the simulated clock; due timers fire at once."""
        self.clock.advance(sim_seconds)
        self.timers.fire_due()

    def add_fault(self, operation: str, fault: Fault | dict[str, Any]) -> None:
        self.faults.add(operation, _as_fault(fault))

    def set_faults(self, operation: str, faults: list[Fault | dict[str, Any]]) -> None:
        self.faults.set(operation, [_as_fault(fault) for fault in faults])

    def clear_faults(self, operation: str | None = None) -> None:
        self.faults.clear(operation)

    def join_face(self, conversation_id: str) -> None:
        self.ensure_started()
        self.lifecycle.join_face(self.conversation(conversation_id))

    def join_participant(self, conversation_id: str, participant_id: str | None = None) -> str:
        self.ensure_started()
        return self.lifecycle.join_participant(self.conversation(conversation_id), participant_id)

    def leave_participant(self, conversation_id: str, participant_id: str | None = None) -> str:
        self.ensure_started()
        return self.lifecycle.leave_participant(self.conversation(conversation_id), participant_id)

    def shutdown_conversation(
        self, conversation_id: str, reason: str, *, error: bool = False
    ) -> None:
        """End a conversation for any reason Tavus reports (e.g. an internal error)."""
        self.ensure_started()
        conv = self.conversation(conversation_id)
        if conv.status != "active":
            raise ControlError(409, f"conversation {conversation_id} is {conv.status}")
        self.lifecycle.shutdown(conv, reason, "error" if error else "ended")


def _as_fault(fault: Fault | dict[str, Any]) -> Fault:
    return parse_fault(fault) if isinstance(fault, dict) else fault
