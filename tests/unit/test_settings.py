from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import (
    DEV_ADMIN_TOKEN,
    Mode,
    Settings,
    SettingsError,
    is_loopback_host,
    normalise_database_url,
)

STRONG_TOKEN = "a" * 8 + "b" * 8 + "c" * 8
STRONG_KEY = "k" * 16 + "z" * 24


def build(**values: object) -> Settings:
    return Settings.model_validate(values)


def settings_error(exc: ValidationError) -> str:
    errors = [e.get("ctx", {}).get("error") for e in exc.errors()]
    found = [e for e in errors if isinstance(e, SettingsError)]
    assert found, exc
    return str(found[0])


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "TAVUS_API_KEY",
        "ADMIN_TOKEN",
        "SECRET_KEY",
        "PALISADE_MODE",
        "TAVUS_BASE_URL",
        "PUBLIC_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


class TestLoopbackHosts:
    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST"])
    def test_loopback(self, host: str) -> None:
        assert is_loopback_host(host)

    @pytest.mark.parametrize(
        "host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.5", "fe80::1", "palisade.lan", ""]
    )
    def test_anything_else_may_be_reachable_from_outside(self, host: str) -> None:
        assert not is_loopback_host(host)


class TestMode:
    def test_nothing_configured_is_dev_with_dev_secrets(self) -> None:
        settings = build()
        assert settings.mode is Mode.DEV
        assert settings.uses_embedded_database
        assert settings.uses_simulator
        assert settings.admin_token_value == DEV_ADMIN_TOKEN

    def test_a_database_makes_it_production(self) -> None:
        with pytest.raises(ValidationError) as caught:
            build(DATABASE_URL="postgresql://u@h/db")
        assert settings_error(caught.value).startswith("ADMIN_TOKEN is required")

    def test_a_tavus_key_makes_it_production(self) -> None:
        with pytest.raises(ValidationError):
            build(TAVUS_API_KEY="tk")

    def test_explicit_dev_mode_wins(self) -> None:
        settings = build(DATABASE_URL="postgresql://u@h/db", PALISADE_MODE="dev")
        assert settings.is_dev

    def test_production_with_real_secrets_starts(self) -> None:
        settings = build(TAVUS_API_KEY="tk", ADMIN_TOKEN=STRONG_TOKEN, SECRET_KEY=STRONG_KEY)
        assert settings.mode is Mode.PRODUCTION
        assert settings.secret_key_value == STRONG_KEY


class TestSecretsOutsideDev:
    @pytest.mark.parametrize(
        ("admin", "secret", "expected"),
        [
            (None, STRONG_KEY, "ADMIN_TOKEN is required"),
            ("changethis", STRONG_KEY, "ADMIN_TOKEN is a placeholder"),
            (DEV_ADMIN_TOKEN, STRONG_KEY, "ADMIN_TOKEN is a placeholder"),
            ("short", STRONG_KEY, "ADMIN_TOKEN is too short"),
            (STRONG_TOKEN, None, "SECRET_KEY is required"),
            (STRONG_TOKEN, "changeme", "SECRET_KEY is a placeholder"),
            (STRONG_TOKEN, "x" * 31, "SECRET_KEY is too short"),
        ],
    )
    def test_refused_with_one_line_saying_what_to_set(
        self, admin: str | None, secret: str | None, expected: str
    ) -> None:
        values: dict[str, object] = {"PALISADE_MODE": "production"}
        if admin is not None:
            values["ADMIN_TOKEN"] = admin
        if secret is not None:
            values["SECRET_KEY"] = secret
        with pytest.raises(ValidationError) as caught:
            build(**values)
        message = settings_error(caught.value)
        assert message.startswith(expected)
        assert "\n" not in message
        assert "set " in message


class TestUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "postgres://u:p@h:5432/db",
            "postgresql://u:p@h:5432/db",
            "postgresql+psycopg://u:p@h:5432/db",
            "postgresql+asyncpg://u:p@h:5432/db",
        ],
    )
    def test_database_url_always_uses_asyncpg(self, url: str) -> None:
        assert normalise_database_url(url) == "postgresql+asyncpg://u:p@h:5432/db"

    def test_non_postgres_database_refused(self) -> None:
        with pytest.raises(ValueError, match="PostgreSQL"):
            normalise_database_url("sqlite:///x.db")

    def test_base_urls_lose_their_trailing_slash(self) -> None:
        settings = build(PUBLIC_BASE_URL="https://palisade.example.com/")
        assert settings.public_base_url == "https://palisade.example.com"

    def test_base_url_must_be_http(self) -> None:
        with pytest.raises(ValidationError):
            build(TAVUS_BASE_URL="ftp://tavus")


class TestMetricsToken:
    def test_unset_or_empty_leaves_the_scrape_open(self) -> None:
        assert build().metrics_token is None
        assert build(PALISADE_METRICS_TOKEN="").metrics_token is None

    def test_a_strong_token_is_kept(self) -> None:
        settings = build(PALISADE_METRICS_TOKEN=STRONG_TOKEN)
        assert settings.metrics_token is not None
        assert settings.metrics_token.get_secret_value() == STRONG_TOKEN

    @pytest.mark.parametrize(
        ("value", "says"), [("short", "too short"), ("changeme", "placeholder")]
    )
    def test_a_weak_token_is_refused_even_in_dev(self, value: str, says: str) -> None:
        with pytest.raises(ValidationError) as caught:
            build(PALISADE_METRICS_TOKEN=value)
        message = settings_error(caught.value)
        assert message.startswith("PALISADE_METRICS_TOKEN")
        assert says in message
