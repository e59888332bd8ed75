"""Settings.from_env: simulator mode, and one error naming every problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from linebot_app.config import (
    DEFAULT_LINE_API,
    SIMULATOR_SECRET,
    SIMULATOR_TOKEN,
    ConfigError,
    Server,
    Settings,
    server,
)
from tests.conftest import ROOT

REAL = {"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t"}


def _workbook(tmp_path: Path) -> str:
    path = tmp_path / "seminar.xlsx"
    path.write_bytes(b"")  # Settings only checks that it is there
    return str(path)



def test_no_credentials_means_simulator_mode() -> None:
    settings = Settings.from_env({})
    assert settings.simulator and not settings.production
    assert settings.channel_secret == SIMULATOR_SECRET
    assert settings.line_api_base_url == "http://127.0.0.1:8000/simulator/line"
    assert settings.workbook_path.as_posix() == "data/seminar.xlsx"
    assert settings.data_dir.as_posix() == "var" and settings.timezone == "Asia/Tokyo"


def test_both_credentials_turn_the_simulator_off(tmp_path: Path) -> None:
    settings = Settings.from_env({**REAL, "WORKBOOK_PATH": _workbook(tmp_path)})
    assert not settings.simulator and settings.line_api_base_url == DEFAULT_LINE_API


def test_simulator_1_next_to_real_credentials_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**REAL, "SIMULATOR": "1", "WORKBOOK_PATH": _workbook(tmp_path)})
    assert len(err.value.problems) == 1
    problem = err.value.problems[0]
    assert "SIMULATOR=1" in problem and "LINE_CHANNEL_SECRET" in problem
    assert "LINE_CHANNEL_ACCESS_TOKEN" in problem


def test_simulator_1_without_credentials_is_simulator_mode() -> None:
    settings = Settings.from_env({"SIMULATOR": "1"})
    assert settings.simulator and settings.channel_access_token == SIMULATOR_TOKEN


@pytest.mark.parametrize("where", [{"K_SERVICE": "seminar-bot"}, {"GAE_ENV": "standard"},
                                   {"BOT_ENV": "production"}])
def test_production_without_credentials_names_every_missing_setting(where: dict,
                                                                    tmp_path: Path) -> None:
    env = {**where, "WORKBOOK_PATH": str(tmp_path / "missing.xlsx")}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    text = str(err.value)
    assert "LINE_CHANNEL_SECRET" in text and "LINE_CHANNEL_ACCESS_TOKEN" in text
    assert f"{tmp_path / 'missing.xlsx'}" in text  # no sample workbook outside simulator mode
    assert not (tmp_path / "missing.xlsx").exists()
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**where, "SHEETS_BACKEND": "google"})
    assert "GOOGLE_SPREADSHEET_ID" in str(err.value) and "LINE_CHANNEL_SECRET" in str(err.value)


def test_production_with_its_configuration_starts(tmp_path: Path) -> None:
    settings = Settings.from_env({**REAL, "K_SERVICE": "bot", "SHEETS_BACKEND": "google",
                                  "GOOGLE_SPREADSHEET_ID": "sheet-id",
                                  "GOOGLE_CLOUD_PROJECT": "proj"})
    assert settings.production and not settings.simulator
    assert settings.google.spreadsheet_id == "sheet-id" and settings.google.on_google_cloud
    assert settings.state_backend == "firestore"  # the default where the disk is the instance's


@pytest.mark.parametrize("where", [{"K_SERVICE": "seminar-bot"}, {"GAE_ENV": "standard"}])
def test_sqlite_state_on_an_ephemeral_disk_is_refused_unless_allowed(where: dict) -> None:
    env = {**REAL, **where, "SHEETS_BACKEND": "google", "GOOGLE_SPREADSHEET_ID": "sheet-id",
           "STATE_BACKEND": "sqlite"}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert f"STATE_BACKEND=sqlite on a disk that does not outlive the instance " \
           f"({next(iter(where))} is set" in str(err.value)
    assert "ALLOW_EPHEMERAL_STATE=on" in str(err.value)
    assert Settings.from_env({**env, "ALLOW_EPHEMERAL_STATE": "on"}).state_backend == "sqlite"
    with pytest.raises(ConfigError, match="ALLOW_EPHEMERAL_STATE must be 'on' or 'off'"):
        Settings.from_env({**env, "ALLOW_EPHEMERAL_STATE": "yes"})
    assert Settings.from_env({**REAL, "STATE_BACKEND": "sqlite", "SHEETS_BACKEND": "google",
                              "GOOGLE_SPREADSHEET_ID": "x"}).state_backend == "sqlite"  # a VM


def test_real_credentials_need_an_existing_workbook(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**REAL, "WORKBOOK_PATH": str(tmp_path / "none.xlsx")})
    assert "WORKBOOK_PATH" in str(err.value) and str(tmp_path / "none.xlsx") in str(err.value)
    assert Settings.from_env({"WORKBOOK_PATH": str(tmp_path / "none.xlsx")}).simulator


def test_google_settings_are_typed_and_checked() -> None:
    env = {"SHEETS_BACKEND": "google", "GOOGLE_SPREADSHEET_ID": "abc",
           "SHEETS_TIMEOUT_SECONDS": "4.5", "SHEETS_EMULATOR_HOST": "127.0.0.1:9"}
    google = Settings.from_env(env).google
    assert (google.spreadsheet_id, google.timeout, google.emulator_host) == ("abc", 4.5, "127.0.0.1:9")
    for bad, says in (("ten", "must be a number, not 'ten'"), ("600", "at most 30"),
                      ("0", "above 0")):
        with pytest.raises(ConfigError) as err:
            Settings.from_env({**env, "SHEETS_TIMEOUT_SECONDS": bad})
        assert "SHEETS_TIMEOUT_SECONDS" in str(err.value) and says in str(err.value)


@pytest.mark.parametrize("name,value", [
    ("BOT_ENV", "staging"), ("SIMULATOR", "yes"), ("PUBLIC_URL", "bot.example.jp"),
    ("TASKS_AUDIENCE", "bot.example.jp"), ("TASKS_INVOKER", "scheduler"),
    ("LINE_OPENAPI_DIR", "/no/such/folder"), ("GOOGLE_APPLICATION_CREDENTIALS", "/no/key.json"),
])
def test_each_bad_value_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"SHEETS_BACKEND": "google", "GOOGLE_SPREADSHEET_ID": "x", name: value})
    assert name in str(err.value) and value in str(err.value)


def test_the_gunicorn_server_settings_are_checked() -> None:
    assert server({"PORT": "9000", "WEB_CONCURRENCY": "2"}) == Server("0.0.0.0:9000", 2, 8)
    with pytest.raises(ConfigError) as err:
        server({"WEB_CONCURRENCY": "two", "GUNICORN_THREADS": "0"})
    assert "WEB_CONCURRENCY" in str(err.value) and "GUNICORN_THREADS" in str(err.value)


def test_nothing_but_config_reads_the_environment() -> None:
    readers = []
    for folder in ("linebot_app", "storage", "domain"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.name != "config.py" and re.search(r"os\.environ|getenv\(", text):
                readers.append(str(path.relative_to(ROOT)))
    assert readers == []


@pytest.mark.parametrize("given,missing", [
    ({"LINE_CHANNEL_SECRET": "s"}, "LINE_CHANNEL_ACCESS_TOKEN"),
    ({"LINE_CHANNEL_ACCESS_TOKEN": "t"}, "LINE_CHANNEL_SECRET"),
])
def test_one_credential_alone_refuses_to_start(given: dict, missing: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env(given)
    assert missing in str(err.value)


def test_every_bad_variable_is_named_at_once() -> None:
    env = {"PORT": "eighty", "SHEETS_BACKEND": "csv", "BOT_TIMEZONE": "Mars/Olympus",
           "LINE_CHANNEL_SECRET": "s"}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    text = str(err.value)
    for name in ("PORT", "SHEETS_BACKEND", "BOT_TIMEZONE", "LINE_CHANNEL_ACCESS_TOKEN"):
        assert name in text


def test_line_api_base_url_is_honoured(tmp_path: Path) -> None:
    env = {**REAL, "LINE_API_BASE_URL": "http://127.0.0.1:9/x/", "WORKBOOK_PATH": _workbook(tmp_path)}
    assert Settings.from_env(env).line_api_base_url == "http://127.0.0.1:9/x"


def test_firestore_settings_are_typed_and_checked(tmp_path: Path) -> None:
    env = {"STATE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "city-bot",
           "FIRESTORE_NAMESPACE": "staging", "FIRESTORE_TIMEOUT_SECONDS": "3",
           "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9", "FIRESTORE_DATABASE": "bot-db"}
    settings = Settings.from_env(env)
    fs = settings.firestore
    assert settings.state_backend == "firestore"
    assert (fs.project, fs.database, fs.namespace, fs.timeout, fs.emulator_host) == (
        "city-bot", "bot-db", "staging", 3.0, "127.0.0.1:9")
    assert Settings.from_env({**env, "FIRESTORE_DATABASE": ""}).firestore.database == "(default)"
    assert Settings.from_env({}).state_backend == "sqlite"
    for bad, names in (({"STATE_BACKEND": "redis"}, "STATE_BACKEND"),
                       ({"STATE_BACKEND": "firestore"}, "GOOGLE_CLOUD_PROJECT"),
                       ({**env, "FIRESTORE_TIMEOUT_SECONDS": "0"}, "FIRESTORE_TIMEOUT_SECONDS")):
        with pytest.raises(ConfigError) as err:
            Settings.from_env(bad)
        assert names in str(err.value)


def test_firestore_in_production_needs_the_shared_spreadsheet(tmp_path: Path) -> None:
    env = {**REAL, "BOT_ENV": "production", "STATE_BACKEND": "firestore",
           "GOOGLE_CLOUD_PROJECT": "city-bot", "WORKBOOK_PATH": _workbook(tmp_path)}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert "SHEETS_BACKEND=google" in str(err.value)
    google = {"SHEETS_BACKEND": "google", "GOOGLE_SPREADSHEET_ID": "abc"}
    assert Settings.from_env({**env, **google}).state_backend == "firestore"
