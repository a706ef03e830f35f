"""Settings: the environment first, then the secrets mapping; bad values name the setting."""

from __future__ import annotations

import pytest

from lora_core.errors import SettingsError
from lora_core.settings import DEFAULT_DATABASE_URL, load_settings, read_secrets_file


def test_defaults_run_locally_in_preview_mode():
    settings = load_settings({})

    assert settings.database_url == DEFAULT_DATABASE_URL
    assert DEFAULT_DATABASE_URL.startswith("sqlite:///") and "/data/" in DEFAULT_DATABASE_URL
    assert settings.generation_limit == 8
    assert settings.generation_window_hours == 24
    assert settings.exempt_users == frozenset()
    assert settings.preview_mode


def test_secrets_are_used_when_the_environment_is_silent():
    settings = load_settings(
        {"FAL_KEY": "id:secret", "GENERATION_LIMIT": 3, "EXEMPT_USERS": "ann, bob ,,"}
    )

    assert settings.fal_key is not None
    assert settings.fal_key.get_secret_value() == "id:secret"
    assert settings.generation_limit == 3
    assert settings.exempt_users == frozenset({"ann", "bob"})
    assert not settings.preview_mode


def test_the_environment_wins_over_secrets(monkeypatch):
    monkeypatch.setenv("GENERATION_LIMIT", "5")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///env.db")

    settings = load_settings({"GENERATION_LIMIT": 3, "DATABASE_URL": "sqlite:///secret.db"})

    assert settings.generation_limit == 5
    assert settings.database_url == "sqlite:///env.db"


def test_a_blank_fal_key_means_preview_mode(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "  ")

    assert load_settings({}).preview_mode


def test_the_key_never_shows_in_the_settings_repr():
    settings = load_settings({"FAL_KEY": "id:very-secret"})

    assert "very-secret" not in repr(settings)
    assert "very-secret" not in str(settings)


def test_sections_of_secrets_are_ignored():
    settings = load_settings({"auth": {"client_id": "x"}, "GENERATION_LIMIT": 2})

    assert settings.generation_limit == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GENERATION_LIMIT", "0"),
        ("GENERATION_LIMIT", "many"),
        ("GENERATION_WINDOW_HOURS", "-1"),
        ("GENERATION_WINDOW_HOURS", "soon"),
        ("DATABASE_URL", ""),
    ],
)
def test_an_invalid_value_is_a_clear_error_naming_the_setting(monkeypatch, name, value):
    monkeypatch.setenv(name, value)

    with pytest.raises(SettingsError) as caught:
        load_settings({})

    assert name in str(caught.value)
    assert str(caught.value).startswith("Invalid setting")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("garbage", "not a database URL"),
        ("nosuchdb://host/db", "no SQLAlchemy dialect"),
        ("mssql+pymssql://user@host/db", "driver for 'mssql' is not installed"),
    ],
)
def test_an_unusable_database_url_is_named(monkeypatch, url, reason):
    monkeypatch.setenv("DATABASE_URL", url)

    with pytest.raises(SettingsError) as caught:
        load_settings({})

    assert "DATABASE_URL" in str(caught.value)
    assert reason in str(caught.value)


def test_the_secrets_file_is_read_for_code_outside_streamlit(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text('GENERATION_LIMIT = 4\n[auth]\nclient_id = "x"\n')

    assert load_settings(read_secrets_file(path)).generation_limit == 4
    assert read_secrets_file(tmp_path / "missing.toml") == {}
    path.write_text("not = [toml")
    with pytest.raises(SettingsError):
        read_secrets_file(path)


def test_s3_storage_needs_a_bucket_and_a_public_url(monkeypatch):
    monkeypatch.setenv("STORAGE_BACKEND", "s3")

    with pytest.raises(SettingsError) as caught:
        load_settings({"S3_PUBLIC_URL": "https://cdn.example/b"})

    assert "S3_BUCKET" in str(caught.value)


def test_turso_settings_win_over_database_url():
    settings = load_settings(
        {
            "DATABASE_URL": "sqlite:///local.db",
            "TURSO_DATABASE_URL": " libsql://studio-team.turso.io ",
            "TURSO_AUTH_TOKEN": "eyJ.hush-hush.token",
        }
    )

    assert settings.database.url == "libsql://studio-team.turso.io"
    assert settings.database.auth_token == "eyJ.hush-hush.token"
    assert settings.database.is_remote
    assert "hush-hush" not in repr(settings) and "hush-hush" not in repr(settings.database)


def test_without_turso_settings_the_database_url_is_used(monkeypatch):
    monkeypatch.setenv("TURSO_DATABASE_URL", "   ")

    settings = load_settings({"DATABASE_URL": "sqlite:///local.db"})

    assert settings.database.url == "sqlite:///local.db"
    assert not settings.database.is_remote
    assert settings.database.label == "SQLite file · local.db"


def test_a_turso_url_that_is_not_a_server_address_is_named():
    with pytest.raises(SettingsError, match="TURSO_DATABASE_URL") as raised:
        load_settings({"TURSO_DATABASE_URL": "studio-team.turso.io"})

    assert "libsql://" in str(raised.value)


def test_a_key_id_and_secret_are_credentials_as_fal_client_reads_them():
    settings = load_settings({"FAL_KEY_ID": "id", "FAL_KEY_SECRET": "hush-7f3a"})

    assert settings.fal_credentials == "id:hush-7f3a"
    assert not settings.preview_mode
    assert "hush-7f3a" not in repr(settings)


def test_a_key_id_without_its_secret_is_named():
    with pytest.raises(SettingsError, match="FAL_KEY_ID and FAL_KEY_SECRET go together"):
        load_settings({"FAL_KEY_ID": "id"})


def test_a_bad_setting_is_named_with_the_rules_own_words(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "garbage")

    with pytest.raises(SettingsError) as caught:
        load_settings({})

    assert str(caught.value) == (
        "Invalid setting DATABASE_URL: not a database URL, e.g. sqlite:///data/lora_studio.db"
    )


def test_every_bad_setting_is_named_at_once(monkeypatch):
    monkeypatch.setenv("GENERATION_LIMIT", "0")
    monkeypatch.setenv("SWEEP_MAX_CELLS", "65")

    with pytest.raises(SettingsError) as caught:
        load_settings({})

    first, second = str(caught.value).removeprefix("Invalid setting ").split("; ")
    assert first.startswith("GENERATION_LIMIT: ") and second.startswith("SWEEP_MAX_CELLS: ")


def test_a_secrets_table_named_like_a_setting_is_not_its_value():
    assert load_settings({"generation_limit": {"value": 3}}).generation_limit == 8


def test_a_broken_secrets_file_is_named(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text("not = [toml")

    with pytest.raises(SettingsError, match=r"^Invalid secrets file .*secrets\.toml: "):
        read_secrets_file(path)
