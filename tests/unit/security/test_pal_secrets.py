from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.domain.profiles.paths import catalog_paths
from app.observability.redaction import REDACTED
from app.security.pal_secrets import (
    SEALED,
    redact,
    redact_profile,
    redacted_credentials,
    seal,
    seal_profile,
    unseal,
    unseal_profile,
)
from app.security.secret_box import SecretBox, SecretBoxError

BOX = SecretBox("k" * 40)
LLM_KEY = "sk-llm-0123456789"
TTS_KEY = "tts-0123456789"
BODY: dict[str, Any] = {
    "pal_name": "Coach",
    "system_prompt": "Be kind.",
    "layers": {
        "llm": {
            "model": "m",
            "api_key": LLM_KEY,
            "headers": {"Authorization": "Bearer h-0123456789", "X-Team": "t"},
        },
        "tts": {"tts_engine": "cartesia", "api_key": TTS_KEY},
    },
}
PLAIN: dict[str, Any] = {
    "pal_name": "Coach",
    "system_prompt": "Be kind.",
    "layers": {"llm": {"model": "m"}, "tts": {"external_voice_id": "v"}},
}


def leaves(body: dict[str, Any]) -> str:
    return json.dumps(body)


class TestSeal:
    def test_credentials_are_sealed_and_come_back(self) -> None:
        original = copy.deepcopy(BODY)
        sealed = seal(BODY, BOX)
        assert original == BODY  # the input is left alone
        text = leaves(sealed)
        for secret in (LLM_KEY, TTS_KEY, "h-0123456789"):
            assert secret not in text
        assert set(sealed["layers"]["llm"]["api_key"]) == {SEALED}
        assert sealed["layers"]["llm"]["model"] == "m"
        assert sealed["system_prompt"] == "Be kind."
        assert unseal(sealed, BOX) == BODY

    def test_a_body_without_credentials_is_not_even_copied(self) -> None:
        assert seal(PLAIN, BOX) is PLAIN
        assert unseal(PLAIN, BOX) is PLAIN
        assert redact(PLAIN) is PLAIN
        assert seal({}, BOX) == {}

    def test_every_catalogued_api_key_is_a_credential(self) -> None:
        paths = [path for path, _ in catalog_paths() if path.endswith(".api_key")]
        assert {"layers.llm.api_key", "layers.tts.api_key"} <= set(paths)
        for path in paths:
            body: dict[str, Any] = {}
            node = body
            *parents, leaf = path.split(".")
            for name in parents:
                node = node.setdefault(name, {})
            node[leaf] = "secret-0123456789"
            assert "secret-0123456789" not in leaves(seal(body, BOX)), path

    def test_an_api_key_under_any_layer_is_sealed(self) -> None:
        body = {"layers": {"conferencing": {"api_key": "conf-0123456789", "room": "r"}}}
        sealed = seal(body, BOX)
        assert "conf-0123456789" not in leaves(sealed)
        assert sealed["layers"]["conferencing"]["room"] == "r"

    def test_each_seal_differs_but_opens_the_same(self) -> None:
        first, second = seal(BODY, BOX), seal(BODY, BOX)
        assert first != second
        assert unseal(first, BOX) == unseal(second, BOX) == BODY

    def test_values_stored_before_sealing_read_as_they_are(self) -> None:
        assert unseal(BODY, BOX) == BODY

    def test_a_removal_in_overrides_stays_a_removal(self) -> None:
        overrides = {"layers": {"llm": {"api_key": None}}}
        assert seal(overrides, BOX) is overrides

    def test_another_secret_key_cannot_open_it(self) -> None:
        with pytest.raises(SecretBoxError):
            unseal(seal(BODY, BOX), SecretBox("x" * 40))


class TestRedact:
    def test_views_show_the_mark(self) -> None:
        shown = redact(BODY)
        assert shown["layers"]["llm"]["api_key"] == REDACTED
        assert shown["layers"]["llm"]["headers"] == {"Authorization": REDACTED, "X-Team": REDACTED}
        assert shown["layers"]["tts"] == {"tts_engine": "cartesia", "api_key": REDACTED}
        assert redact(seal(BODY, BOX)) == shown

    def test_the_mark_sent_back_is_found(self) -> None:
        assert redacted_credentials(BODY) == []
        assert redacted_credentials(redact(BODY)) == [
            ("layers", "llm", "api_key"),
            ("layers", "tts", "api_key"),
            ("layers", "llm", "headers", "Authorization"),
            ("layers", "llm", "headers", "X-Team"),
        ]


class TestProfiles:
    def test_template_and_variants_are_sealed(self) -> None:
        config: dict[str, Any] = {
            "strategy": "ephemeral",
            "pal_template": BODY,
            "warm_pool": {
                "size": 1,
                "variants": [
                    {"name": "own", "overrides": {"layers": {"tts": {"api_key": "v-0123456789"}}}},
                    {"name": "plain", "overrides": {"system_prompt": "x"}},
                ],
            },
        }
        sealed = seal_profile(config, BOX)
        text = leaves(sealed)
        for secret in (LLM_KEY, TTS_KEY, "v-0123456789"):
            assert secret not in text
        assert sealed["warm_pool"]["variants"][1] is config["warm_pool"]["variants"][1]
        assert unseal_profile(sealed, BOX) == config
        assert redact_profile(sealed)["warm_pool"]["variants"][0]["overrides"] == {
            "layers": {"tts": {"api_key": REDACTED}}
        }

    def test_a_profile_without_credentials_is_kept_as_is(self) -> None:
        config = {"strategy": "reuse", "pal_id": "p1"}
        assert seal_profile(config, BOX) is config
        with_template = {"strategy": "ephemeral", "pal_template": PLAIN, "warm_pool": None}
        assert seal_profile(with_template, BOX) is with_template
