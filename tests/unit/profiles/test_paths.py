from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.domain.profiles.paths import (
    MAX_DEPTH,
    PAL_BODY,
    Kind,
    catalog_paths,
    check_pal_body,
    covers,
    is_known_path,
    is_override_allowed,
    leaf_paths,
    lookup,
    nesting_depth,
    split_path,
)
from tests.unit.profiles.builders import template

REPO = Path(__file__).resolve().parents[3]

DOCUMENTED_PATHS = [
    "pal_name",
    "system_prompt",
    "pipeline_mode",
    "context",
    "default_face_id",
    "document_ids",
    "document_tags",
    "objectives_id",
    "guardrails_id",
    "languages",
    "disclosure_type",
    "verbal_disclosure",
    "visual_disclosure",
    "layers",
    "layers.llm",
    "layers.llm.model",
    "layers.llm.base_url",
    "layers.llm.extra_body",
    "layers.llm.speculative_inference",
    "layers.llm.tools",
    "layers.tts",
    "layers.tts.tts_engine",
    "layers.tts.external_voice_id",
    "layers.tts.voice_id",
    "layers.tts.voice_settings",
    "layers.tts.voice_settings.speed",
    "layers.stt",
    "layers.stt.stt_engine",
    "layers.stt.hotwords",
    "layers.perception",
    "layers.perception.perception_model",
    "layers.perception.visual_awareness_queries",
    "layers.conversational_flow",
    "layers.conversational_flow.turn_detection_model",
    "layers.conversational_flow.turn_taking_patience",
    "layers.conversational_flow.pal_interruptibility",
    "layers.conferencing",
    "layers.transport.transport_type",
]


class TestLookup:
    @pytest.mark.parametrize("path", DOCUMENTED_PATHS)
    def test_documented_pal_fields_are_known(self, path: str) -> None:
        assert is_known_path(path)

    @pytest.mark.parametrize(
        "path",
        [
            "layers.llm.extra_body.temperature",
            "layers.llm.headers.X-Trace",
            "layers.llm.default_query.version",
            "layers.tts.voice_settings.similarity_boost",
            "layers.tts.voice_settings.engine_specific",
            "layers.conferencing.anything.below",
            "layers.transport.room",
        ],
    )
    def test_anything_below_an_open_object_is_known(self, path: str) -> None:
        assert is_known_path(path)

    @pytest.mark.parametrize(
        "path",
        [
            "",
            "nope",
            "pal_id",
            "System_prompt",
            " system_prompt",
            "system_prompt ",
            "layers.",
            ".layers",
            "layers..tts",
            "layers.tts.nope",
            "layers.vision",
            "layers.llm.model.name",
            "layers.llm.tools.0",
            "document_ids.0",
            "layers.tt",
        ],
    )
    def test_unknown_paths_are_refused(self, path: str) -> None:
        assert not is_known_path(path)
        assert lookup(path) is None

    def test_lookup_accepts_segments(self) -> None:
        node = lookup(("layers", "tts", "external_voice_id"))
        assert node is not None
        assert node.kind is Kind.STRING

    def test_split_path_rejects_empty_segments(self) -> None:
        assert split_path("layers.tts") == ("layers", "tts")
        assert split_path("") == ()
        assert split_path("a..b") == ()

    def test_catalog_lists_parents_before_children(self) -> None:
        paths = [path for path, _ in catalog_paths()]
        assert len(paths) == len(set(paths))
        for index, path in enumerate(paths):
            parent = path.rpartition(".")[0]
            if parent:
                assert parent in paths[:index]
        assert all(is_known_path(path) for path in paths)

    def test_every_catalogued_path_is_in_the_docs(self) -> None:
        docs = (REPO / "docs" / "profiles.md").read_text(encoding="utf-8")
        documented = set(re.findall(r"`([a-z_.]+)`", docs))
        missing = [path for path, _ in catalog_paths() if path not in documented]
        assert missing == []

    def test_root_is_a_closed_object(self) -> None:
        assert PAL_BODY.kind is Kind.OBJECT
        assert not PAL_BODY.open


class TestCovers:
    @pytest.mark.parametrize(
        ("allowed", "path", "expected"),
        [
            ("layers.tts", "layers.tts", True),
            ("layers.tts", "layers.tts.external_voice_id", True),
            ("layers.tts", "layers.tts.voice_settings.speed", True),
            ("layers.tts.voice_settings", "layers.tts.voice_settings.speed", True),
            ("layers.tts.voice_settings.speed", "layers.tts.voice_settings.speed", True),
            ("layers", "layers.llm.model", True),
            ("layers.tts.voice_settings", "layers.tts", False),
            ("layers.tts.voice_settings", "layers.tts.external_voice_id", False),
            ("layers.tt", "layers.tts", False),
            ("layers.tt", "layers.tts.external_voice_id", False),
            ("system_prompt", "system_prompt_extra", False),
            ("layers.llm", "layers.tts.voice_id", False),
            ("", "system_prompt", False),
            ("system_prompt", "", False),
        ],
    )
    def test_an_entry_covers_itself_and_what_is_below(
        self, allowed: str, path: str, expected: bool
    ) -> None:
        assert covers(allowed, path) is expected

    def test_any_entry_may_cover(self) -> None:
        allowed = ["system_prompt", "layers.tts.voice_settings"]
        assert is_override_allowed("layers.tts.voice_settings.speed", allowed)
        assert is_override_allowed("system_prompt", allowed)
        assert not is_override_allowed("layers.tts.external_voice_id", allowed)
        assert not is_override_allowed("system_prompt", [])


class TestLeafPaths:
    def test_empty_overrides_touch_nothing(self) -> None:
        assert leaf_paths({}) == []

    def test_nested_objects_flatten_to_their_leaves_sorted(self) -> None:
        overrides = {
            "system_prompt": "x",
            "layers": {"tts": {"voice_settings": {"speed": 0.5}, "external_voice_id": "v"}},
        }
        assert leaf_paths(overrides) == [
            "layers.tts.external_voice_id",
            "layers.tts.voice_settings.speed",
            "system_prompt",
        ]

    def test_null_is_a_leaf_at_its_path(self) -> None:
        assert leaf_paths({"layers": {"tts": None}}) == ["layers.tts"]

    def test_empty_object_is_a_leaf_at_its_path(self) -> None:
        assert leaf_paths({"layers": {}}) == ["layers"]
        assert leaf_paths({"layers": {"tts": {}}}) == ["layers.tts"]

    def test_lists_are_leaves(self) -> None:
        assert leaf_paths({"document_ids": ["d1"], "layers": {"llm": {"tools": [{}]}}}) == [
            "document_ids",
            "layers.llm.tools",
        ]

    def test_an_object_given_for_a_scalar_field_is_one_leaf(self) -> None:
        assert leaf_paths({"system_prompt": {"text": "x"}}) == ["system_prompt"]

    def test_open_objects_flatten_into_their_free_keys(self) -> None:
        overrides = {"layers": {"llm": {"extra_body": {"temperature": 0.2, "nested": {"a": 1}}}}}
        assert leaf_paths(overrides) == [
            "layers.llm.extra_body.nested.a",
            "layers.llm.extra_body.temperature",
        ]

    def test_unknown_keys_are_leaves_at_their_own_path(self) -> None:
        assert leaf_paths({"nope": {"deeper": 1}, "layers": {"vision": 1}}) == [
            "layers.vision",
            "nope",
        ]


class TestNestingDepth:
    @pytest.mark.parametrize(
        ("value", "depth"),
        [
            ("x", 0),
            (None, 0),
            ({}, 1),
            ([], 1),
            ({"a": 1}, 1),
            ({"a": {"b": [1]}}, 3),
            ({"a": 1, "b": {"c": {}}}, 3),
        ],
    )
    def test_depth(self, value: Any, depth: int) -> None:
        assert nesting_depth(value) == depth

    def test_hostile_nesting_stops_early_without_recursion(self) -> None:
        value: Any = 1
        for _ in range(100_000):
            value = [value]
        assert nesting_depth(value) == MAX_DEPTH + 1


def _reasons(body: dict[str, Any], *, complete: bool = True) -> list[tuple[str, str]]:
    return [(p.dotted, p.reason) for p in check_pal_body(body, complete=complete)]


class TestCheckPalBody:
    def test_a_full_template_is_valid(self) -> None:
        assert check_pal_body(template(), complete=True) == []

    def test_every_documented_field_with_a_valid_value_passes(self) -> None:
        body = template(
            pipeline_mode="full",
            context="legacy",
            document_ids=["d1"],
            guardrails_id="g12345",
            languages=["en"],
            disclosure_type="auto",
            verbal_disclosure=True,
            visual_disclosure="AI generated",
            layers={
                "llm": {
                    "model": "custom",
                    "base_url": "https://llm.example",
                    "api_key": "k",
                    "headers": {"X": "y"},
                    "extra_body": {"top_p": 0.9},
                    "default_query": {"v": "1"},
                    "speculative_inference": False,
                    "tools": [{"type": "function"}],
                },
                "tts": {
                    "tts_engine": "elevenlabs",
                    "api_key": "k",
                    "external_voice_id": "v",
                    "voice_id": "tv",
                    "tts_model_name": "sonic-3",
                    "tts_emotion_control": True,
                    "pronunciation_dictionary_id": "pd",
                    "voice_settings": {
                        "speed": 1,
                        "stability": 0.5,
                        "similarity_boost": 0.5,
                        "style": 0.1,
                        "use_speaker_boost": True,
                        "emotion": ["curiosity"],
                    },
                },
                "stt": {"stt_engine": "tavus-advanced", "hotwords": "Tavus"},
                "perception": {
                    "perception_model": "raven-1",
                    "visual_awareness_queries": ["is there a hat?"],
                    "perception_analysis_queries": ["mood?"],
                    "visual_tool_prompt": "p",
                    "visual_tools": [],
                    "audio_tool_prompt": "p",
                    "audio_tools": [],
                    "emotion_recognition": "full",
                },
                "conversational_flow": {
                    "turn_detection_model": "sparrow-1",
                    "turn_taking_patience": "high",
                    "pal_interruptibility": "low",
                    "voice_isolation": "near",
                    "idle_engagement": "off",
                },
                "conferencing": {"provider": "google_meet"},
                "transport": {"transport_type": "livekit"},
            },
        )
        assert check_pal_body(body, complete=True) == []

    @pytest.mark.parametrize(
        ("body_changes", "expected"),
        [
            ({"pal_id": "p1"}, [("pal_id", "unknown_field")]),
            ({"layers": {"vision": {}}}, [("layers.vision", "unknown_field")]),
            ({"layers": {"tts": {"speed": 1}}}, [("layers.tts.speed", "unknown_field")]),
            ({"pal_name": 1}, [("pal_name", "wrong_type")]),
            ({"document_ids": "d1"}, [("document_ids", "wrong_type")]),
            ({"document_ids": ["d1", 2]}, [("document_ids", "wrong_type")]),
            ({"layers": []}, [("layers", "wrong_type")]),
            ({"layers": {"llm": {"tools": {}}}}, [("layers.llm.tools", "wrong_type")]),
            (
                {"layers": {"llm": {"speculative_inference": "yes"}}},
                [("layers.llm.speculative_inference", "wrong_type")],
            ),
            (
                {"layers": {"tts": {"voice_settings": {"speed": True}}}},
                [("layers.tts.voice_settings.speed", "wrong_type")],
            ),
            (
                {"layers": {"tts": {"voice_settings": {"speed": "fast"}}}},
                [("layers.tts.voice_settings.speed", "wrong_type")],
            ),
            ({"layers": {"llm": {"headers": "x"}}}, [("layers.llm.headers", "wrong_type")]),
            ({"verbal_disclosure": 3}, [("verbal_disclosure", "wrong_type")]),
            ({"pipeline_mode": "turbo"}, [("pipeline_mode", "invalid_choice")]),
            ({"disclosure_type": "sometimes"}, [("disclosure_type", "invalid_choice")]),
            (
                {"layers": {"conversational_flow": {"turn_taking_patience": "extreme"}}},
                [("layers.conversational_flow.turn_taking_patience", "invalid_choice")],
            ),
            ({"context": None}, [("context", "null_not_allowed")]),
        ],
    )
    def test_each_defect_is_reported_at_its_path(
        self, body_changes: dict[str, Any], expected: list[tuple[str, str]]
    ) -> None:
        assert _reasons(template(**body_changes)) == expected

    def test_several_defects_are_all_reported(self) -> None:
        body = template(pal_name=1, nope=True, pipeline_mode="x")
        assert _reasons(body) == [
            ("pal_name", "wrong_type"),
            ("nope", "unknown_field"),
            ("pipeline_mode", "invalid_choice"),
        ]

    def test_default_face_id_is_required(self) -> None:
        body = template()
        del body["default_face_id"]
        assert _reasons(body) == [("default_face_id", "required")]

    @pytest.mark.parametrize("prompt", [None, "", "   "])
    def test_system_prompt_is_required_in_full_mode(self, prompt: str | None) -> None:
        body = template()
        if prompt is None:
            del body["system_prompt"]
        else:
            body["system_prompt"] = prompt
        assert _reasons(body) == [("system_prompt", "required")]

    def test_system_prompt_is_optional_in_echo_mode(self) -> None:
        body = template(pipeline_mode="echo")
        del body["system_prompt"]
        assert _reasons(body) == []

    def test_a_null_required_field_is_reported_once(self) -> None:
        assert _reasons(template(default_face_id=None)) == [("default_face_id", "null_not_allowed")]

    def test_partial_bodies_allow_null_and_need_nothing(self) -> None:
        assert _reasons({"system_prompt": None, "layers": {"tts": None}}, complete=False) == []
        assert _reasons({}, complete=False) == []

    def test_partial_bodies_still_refuse_unknown_fields_and_wrong_types(self) -> None:
        assert _reasons({"nope": None, "pal_name": 2}, complete=False) == [
            ("nope", "unknown_field"),
            ("pal_name", "wrong_type"),
        ]

    def test_too_deep_bodies_are_refused_whole(self) -> None:
        deep: Any = "x"
        for _ in range(MAX_DEPTH + 1):
            deep = {"k": deep}
        body = template(layers={"llm": {"extra_body": deep}})
        assert _reasons(body) == [("", "too_deep")]
