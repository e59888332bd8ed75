"""LINE's loading animation: shown in a 1:1 chat when an answer takes more than a second."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from linebot_app.bot.core import LOADING_AFTER_SECONDS, LOADING_SECONDS
from tests.conftest import BotHarness, Emu, build_harness, google_env

U1 = "U" + "1" * 32


@pytest.fixture
def slow_sheet(tmp_path, emu: Emu) -> Iterator[tuple[BotHarness, Emu]]:
    """A bot that has not read its (emulated Google) sheet yet."""
    yield build_harness(tmp_path, **google_env(emu, SHEETS_TIMEOUT_SECONDS="10")), emu


def test_a_slow_answer_shows_the_loading_animation_until_the_reply(slow_sheet) -> None:
    bot, emu = slow_sheet
    emu.faults(latency_seconds=30, latency=1.5)  # the first read of the sheet is slow
    assert bot.say("イベント", user=U1)[0].startswith("開催予定のイベント")
    assert bot.line.loadings == [(U1, LOADING_SECONDS)]
    assert bot.line.violations == []


def test_a_quick_answer_shows_none(slow_sheet) -> None:
    bot, _ = slow_sheet
    bot.say("イベント", user=U1)  # read once, quickly
    bot.say("ヘルプ", user=U1)
    time.sleep(LOADING_AFTER_SECONDS + 0.3)  # the timer was stopped by the reply
    assert bot.line.loadings == []


def test_group_chats_get_no_animation(slow_sheet) -> None:  # LINE shows it in 1:1 chats only
    bot, emu = slow_sheet
    emu.faults(latency_seconds=30, latency=1.5)
    bot.say("イベント", user=U1, chat="group")
    assert bot.line.loadings == []
