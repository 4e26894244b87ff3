"""The simulator's state file: what one run leaves, the next finds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tavus_simulator import Simulator, SimulatorConfig
from tavus_simulator.config import SeededPal
from tavus_simulator.records import ConversationRecord

KEY = "k1"
PAL_BODY = {"pal_name": "Coach", "default_face_id": "r1", "system_prompt": "Be kind."}
DOCS_PAL = SeededPal(api_key=KEY, pal_id="pcb7a34da5fe", pal_name="Docs coach")


def simulator(state_file: Path, **config: object) -> Simulator:
    return Simulator(SimulatorConfig(seed=7, state_file=state_file, **config))


def start_conversation(sim: Simulator, pal_id: str, **properties: int) -> ConversationRecord:
    account = sim.store.account(KEY)
    return sim.store.create_conversation(account, {"pal_id": pal_id, "properties": properties})


def listed(sim: Simulator, status: str | None = None) -> list[str]:
    page, _ = sim.store.list_conversations(sim.store.account(KEY), status, 1, 100)
    return [conv.conversation_id for conv in page]


class TestRoundTrip:
    def test_pals_and_conversations_come_back_as_they_were(self, tmp_path: Path) -> None:
        state = tmp_path / "state.json"
        first = simulator(state)
        account = first.store.account(KEY)
        kept = first.store.create_pal(account, PAL_BODY, legacy=False)
        gone = first.store.create_pal(account, PAL_BODY, legacy=False)
        first.store.delete_pal(account, gone.pal_id, legacy=False)
        ended = start_conversation(first, kept.pal_id)
        first.store.end_conversation(account, ended.conversation_id)
        running = start_conversation(first, kept.pal_id)
        before = first.snapshot()
        assert first.state_file is not None
        first.state_file.save(first)

        second = simulator(state)

        after = second.snapshot()
        assert after["pals"] == before["pals"]
        assert after["conversations"] == before["conversations"]
        assert after["accounts"] == before["accounts"] == {KEY: {"active_conversations": 1}}
        assert listed(second) == [running.conversation_id, ended.conversation_id]
        assert listed(second, "ended") == [ended.conversation_id]
        pals, total = second.store.list_pals(second.store.account(KEY), "user", 1, 10)
        assert ([p.pal_id for p in pals], total) == ([kept.pal_id], 1)

    def test_new_ids_go_on_from_where_the_generator_stopped(self, tmp_path: Path) -> None:
        state = tmp_path / "state.json"
        first = simulator(state)
        account = first.store.account(KEY)
        made = [first.store.create_pal(account, PAL_BODY, legacy=False).pal_id for _ in range(3)]
        assert first.state_file is not None
        first.state_file.save(first)
        without_a_file = Simulator(SimulatorConfig(seed=7))
        fresh_account = without_a_file.store.account(KEY)
        for _ in range(3):
            without_a_file.store.create_pal(fresh_account, PAL_BODY, legacy=False)

        second = simulator(state)
        next_id = second.store.create_pal(second.store.account(KEY), PAL_BODY, legacy=False).pal_id

        assert next_id not in made
        # The same id a simulator with the same seed would have drawn next.
        assert next_id == without_a_file.store.create_pal(fresh_account, PAL_BODY, False).pal_id

    def test_an_active_conversation_resumes_its_clocks(self, tmp_path: Path) -> None:
        state = tmp_path / "state.json"
        first = simulator(state, replica_join_delay_s=None)
        pal = first.store.create_pal(first.store.account(KEY), PAL_BODY, legacy=False)
        short = start_conversation(first, pal.pal_id, max_call_duration=60)
        long = start_conversation(first, pal.pal_id, max_call_duration=3600)
        assert first.state_file is not None
        first.state_file.save(first)
        # The simulator was down for two minutes.
        data = json.loads(state.read_text())
        data["saved_at"] = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
        state.write_text(json.dumps(data))

        second = simulator(state, replica_join_delay_s=None)
        second.timers.fire_due()

        assert second.conversation(short.conversation_id).status == "ended"
        assert second.conversation(short.conversation_id).shutdown_reason == (
            "max_call_duration reached"
        )
        assert second.conversation(long.conversation_id).status == "active"
        assert second.snapshot()["accounts"][KEY]["active_conversations"] == 1

    def test_without_a_file_the_simulator_starts_empty_and_keeps_nothing(
        self, tmp_path: Path
    ) -> None:
        sim = Simulator(SimulatorConfig(seed=7))
        sim.store.create_pal(sim.store.account(KEY), PAL_BODY, legacy=False)
        assert sim.state_file is None
        assert list(tmp_path.iterdir()) == []

    def test_an_unreadable_file_is_set_aside(self, tmp_path: Path) -> None:
        state = tmp_path / "state.json"
        state.write_text("{not json")

        sim = simulator(state)

        assert sim.store.pals == {}
        assert (tmp_path / "state.json.unreadable").read_text() == "{not json"
        assert not state.exists()


class TestSeededPals:
    def test_an_account_holds_the_pal_from_the_start_and_after_a_reset(
        self, tmp_path: Path
    ) -> None:
        sim = Simulator(SimulatorConfig(seed=7, pals=(DOCS_PAL,)))
        assert sim.pal("pcb7a34da5fe").account == KEY
        sim.reset()
        pal = sim.pal("pcb7a34da5fe")
        conv = start_conversation(sim, pal.pal_id)
        assert conv.pal_id == pal.pal_id

    def test_a_restored_pal_is_not_made_again(self, tmp_path: Path) -> None:
        state = tmp_path / "state.json"
        first = simulator(state, pals=(DOCS_PAL,))
        account = first.store.account(KEY)
        first.store.delete_pal(account, DOCS_PAL.pal_id, legacy=False)
        assert first.state_file is not None
        first.state_file.save(first)

        second = simulator(state, pals=(DOCS_PAL,))

        assert second.pal(DOCS_PAL.pal_id).deleted
