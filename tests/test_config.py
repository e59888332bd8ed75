"""Settings.from_env: simulator mode, and one error naming every problem."""

from __future__ import annotations

import pytest

from linebot_app.config import DEFAULT_LINE_API, ConfigError, Settings


def test_no_credentials_means_simulator_mode() -> None:
    settings = Settings.from_env({})
    assert settings.simulator_mode and settings.simulator
    assert settings.line_api_base_url == "http://127.0.0.1:8000/simulator/line"
    assert settings.workbook_path.as_posix() == "data/seminar.xlsx"
    assert settings.data_dir.as_posix() == "var" and settings.timezone == "Asia/Tokyo"


def test_both_credentials_turn_the_simulator_off() -> None:
    settings = Settings.from_env({"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t"})
    assert not settings.simulator and settings.line_api_base_url == DEFAULT_LINE_API


def test_simulator_1_keeps_the_simulator_with_credentials() -> None:
    env = {"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t", "SIMULATOR": "1"}
    assert Settings.from_env(env).simulator


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


def test_line_api_base_url_is_honoured() -> None:
    env = {"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t",
           "LINE_API_BASE_URL": "http://127.0.0.1:9/x/"}
    assert Settings.from_env(env).line_api_base_url == "http://127.0.0.1:9/x"
