"""The simulator's accounts kept in a JSON file, so that a restart finds them again.

Kept: every user PAL and conversation (deleted ones too, as Tavus keeps them), the
random generator's state, and where the simulated calendar stood. Not kept: the call
log, faults, webhook deliveries in flight and the configuration, which comes from the
command line each time. A conversation that was active resumes its timers as if they
had run meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tavus_simulator.clock import SimClock
from tavus_simulator.lifecycle import Lifecycle
from tavus_simulator.records import AppMessage, ConversationRecord, PalRecord
from tavus_simulator.store import Store

logger = logging.getLogger(__name__)

FORMAT = 1
SAVE_EVERY_S = 1.0
_PAL_TIMES = frozenset({"created_at", "updated_at", "deleted_at"})
_CONVERSATION_TIMES = frozenset(
    {"created_at", "updated_at", "face_joined_at", "ended_at", "deleted_at"}
)
_MESSAGE_TIMES = frozenset({"accepted_at", "handled_at"})
# Live only while the simulator runs: timers are armed again on load, and the
# send-app-message window is measured on a clock that starts again at zero.
_CONVERSATION_TRANSIENT = frozenset(
    {"timers", "app_messages", "app_message_window_start", "app_message_window_count"}
)
_PARTICIPANT_NUMBER = re.compile(r"^participant-(\d+)$")

R = TypeVar("R")


class Simulator(Protocol):
    """The parts of ``state.Simulator`` whose state lasts."""

    seed: int
    rng: random.Random
    clock: SimClock
    store: Store
    lifecycle: Lifecycle


def _record_json(record: Any, times: frozenset[str], skip: frozenset[str] = frozenset()) -> Any:
    data = {}
    for field in dataclasses.fields(record):
        if field.name in skip:
            continue
        value = getattr(record, field.name)
        data[field.name] = value.isoformat() if field.name in times and value else value
    return data


def _record(cls: type[R], data: dict[str, Any], times: frozenset[str]) -> R:
    values = {
        name: datetime.fromisoformat(value) if name in times and value else value
        for name, value in data.items()
    }
    return cls(**values)


def dump(sim: Simulator) -> dict[str, Any]:
    """The simulator's lasting state as JSON-ready data."""
    version, internal, gauss = sim.rng.getstate()
    return {
        "format": FORMAT,
        "seed": sim.seed,
        "rng": [version, list(internal), gauss],
        "pals": [
            _record_json(pal, _PAL_TIMES)
            for pal in sim.store.pals.values()
            if pal.pal_type == "user"
        ],
        "conversations": [
            {
                **_record_json(conv, _CONVERSATION_TIMES, _CONVERSATION_TRANSIENT),
                "app_messages": [
                    _record_json(message, _MESSAGE_TIMES) for message in conv.app_messages
                ],
            }
            for conv in sim.store.conversations.values()
        ],
    }


def restore(sim: Simulator, data: dict[str, Any], downtime: timedelta) -> None:
    """Load what ``dump`` wrote into a simulator that holds nothing yet."""
    if data.get("format") != FORMAT:
        raise ValueError(f"unknown state format {data.get('format')!r}")
    pals = [_record(PalRecord, pal, _PAL_TIMES) for pal in data["pals"]]
    conversations = []
    for raw in data["conversations"]:
        messages = [_record(AppMessage, m, _MESSAGE_TIMES) for m in raw.pop("app_messages")]
        conv = _record(ConversationRecord, raw, _CONVERSATION_TIMES)
        conv.app_messages = messages
        conversations.append(conv)
    sim.seed = data["seed"]
    version, internal, gauss = data["rng"]
    sim.rng.setstate((version, tuple(internal), gauss))
    wall = datetime.fromisoformat(data["wall"])
    sim.clock.continue_from(wall + downtime * sim.clock.time_scale)
    sim.store.restore(pals, conversations)
    numbers = [
        int(match.group(1))
        for conv in conversations
        for participant in conv.participants
        if (match := _PARTICIPANT_NUMBER.match(participant))
    ]
    sim.lifecycle.number_participants_after(max(numbers, default=0))
    for conv in conversations:
        sim.lifecycle.resume(conv)


class StateFile:
    """One simulator's state on disk: read once at start-up, written whenever it changed
    (checked every ``SAVE_EVERY_S``) and once more on shutdown."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: str | None = None
        self._task: asyncio.Task[None] | None = None

    def load(self, sim: Simulator) -> bool:
        """Restore ``sim`` from the file; False when there is none. A file that cannot be
        read is set aside (renamed ``*.unreadable``) and the simulator starts empty."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return False
        try:
            data = json.loads(text)
            saved_at = datetime.fromisoformat(data["saved_at"])
            downtime = max(datetime.now(UTC) - saved_at, timedelta(0))
            restore(sim, data, downtime)
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + ".unreadable")
            self.path.replace(aside)
            logger.warning(
                "simulator state in %s is unreadable (%s): moved to %s", self.path, exc, aside
            )
            return False
        self._written = self._body(sim)
        logger.info(
            "simulator state restored from %s: %d PALs, %d conversations",
            self.path,
            len(sim.store.pals),
            len(sim.store.conversations),
        )
        return True

    def save(self, sim: Simulator) -> None:
        body = self._body(sim)
        if body == self._written:
            return
        data = {
            **json.loads(body),
            "saved_at": datetime.now(UTC).isoformat(),
            "wall": sim.clock.wall().isoformat(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed over: a crash mid-write leaves the previous state.
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(data))
        os.replace(partial, self.path)
        self._written = body

    def start(self, sim: Simulator) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._keep_saved(sim), name="tavus-sim-state"
            )

    async def aclose(self, sim: Simulator) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.save(sim)

    async def _keep_saved(self, sim: Simulator) -> None:
        while True:
            await asyncio.sleep(SAVE_EVERY_S)
            try:
                self.save(sim)
            except OSError:
                logger.exception("cannot save the simulator state to %s", self.path)

    @staticmethod
    def _body(sim: Simulator) -> str:
        return json.dumps(dump(sim), sort_keys=True)
