"""The settings object: embedded defaults, environment overrides, one read per process."""

from __future__ import annotations

import pytest

from settings import Settings, get_settings


def test_defaults_are_the_embedded_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("WARRANT_MODEL", "WARRANT_FGA_BACKEND", "WARRANT_ISSUER", "WARRANT_STUDIO_ENABLED"):
        monkeypatch.delenv(key, raising=False)
    s = Settings(_env_file=None)
    assert s.model == "offline"
    assert s.fga_backend == "local"
    assert s.issuer_url.startswith("http://127.0.0.1:")
    assert s.studio_enabled is False


def test_environment_overrides_and_issuer_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARRANT_ISSUER", "https://tenant.example.auth0.com")
    monkeypatch.setenv("WARRANT_FGA_BACKEND", "openfga")
    s = Settings(_env_file=None)
    assert s.issuer_url == "https://tenant.example.auth0.com/"
    assert s.fga_backend == "openfga"


def test_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARRANT_FGA_BACKEND", "zanzibar")
    with pytest.raises(ValueError, match="fga_backend"):
        Settings(_env_file=None)


def test_read_once_per_process() -> None:
    get_settings.cache_clear()
    assert get_settings() is get_settings()


def test_secrets_do_not_print() -> None:
    s = Settings(_env_file=None)
    assert "warrant-agent-secret" not in repr(s)


def test_override_is_scoped() -> None:
    get_settings.cache_clear()
    before = get_settings().model
    with get_settings.override(model="openai:gpt-4o-mini") as s:
        assert s.model == "openai:gpt-4o-mini"
        assert get_settings().model == "openai:gpt-4o-mini"
    assert get_settings().model == before
