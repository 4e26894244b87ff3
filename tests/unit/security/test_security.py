from __future__ import annotations

import pytest

from app.security import api_keys
from app.security.secret_box import SecretBox, SecretBoxError
from app.security.tokens import WebhookTokens, constant_time_equals

SECRET = "s" * 40


class TestApiKeys:
    def test_keys_are_prefixed_unique_and_high_entropy(self) -> None:
        keys = {api_keys.generate().key for _ in range(200)}
        assert len(keys) == 200
        for key in keys:
            assert key.startswith("psk_")
            assert len(key) >= 4 + 43  # 32 random bytes, url-safe base64
            assert api_keys.looks_like_key(key)

    def test_only_a_hash_is_derived_for_storage(self) -> None:
        new = api_keys.generate()
        assert new.key_hash == api_keys.hash_key(new.key)
        assert new.key.encode() not in new.key_hash
        assert new.display_prefix == new.key[: api_keys.DISPLAY_PREFIX_LENGTH]
        assert len(new.display_prefix) < len(new.key) // 3

    @pytest.mark.parametrize("value", ["", "psk_short", "Bearer psk_x", "sk_" + "a" * 40])
    def test_malformed_keys_are_recognised(self, value: str) -> None:
        assert not api_keys.looks_like_key(value)


class TestSecretBox:
    def test_round_trip_and_ciphertext_hides_plaintext(self) -> None:
        box = SecretBox(SECRET)
        token = box.encrypt("tavus-key-123")
        assert b"tavus-key-123" not in token
        assert box.decrypt(token) == "tavus-key-123"

    def test_another_secret_key_cannot_decrypt(self) -> None:
        token = SecretBox(SECRET).encrypt("tavus-key-123")
        with pytest.raises(SecretBoxError, match="SECRET_KEY"):
            SecretBox("t" * 40).decrypt(token)

    def test_repr_never_shows_key_material(self) -> None:
        assert SECRET not in repr(SecretBox(SECRET))


class TestWebhookTokens:
    def test_token_is_stable_per_session_and_differs_across_sessions(self) -> None:
        tokens = WebhookTokens(SECRET)
        assert tokens.token_for("a") == tokens.token_for("a")
        assert tokens.token_for("a") != tokens.token_for("b")
        assert len(tokens.token_for("a")) >= 40

    def test_verify_accepts_only_the_right_token(self) -> None:
        tokens = WebhookTokens(SECRET)
        good = tokens.token_for("session-1")
        assert tokens.verify("session-1", good)
        assert not tokens.verify("session-2", good)
        assert not tokens.verify("session-1", None)
        assert not tokens.verify("session-1", "")
        assert not tokens.verify("session-1", good[:-1] + ("A" if good[-1] != "A" else "B"))

    def test_tokens_depend_on_the_secret_key(self) -> None:
        assert WebhookTokens(SECRET).token_for("x") != WebhookTokens("u" * 40).token_for("x")

    def test_constant_time_equals(self) -> None:
        assert constant_time_equals("abc", "abc")
        assert not constant_time_equals("abc", "abd")
