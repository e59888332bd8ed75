"""A command, a rich-menu tap or a postback during a survey runs, and the survey's answers are kept."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import BotHarness
from tests.test_surveys import TELEMED, _rows

U1 = "U" + "1" * 32
MENU = [a["action"]["text"] for a in json.loads(
    (Path(__file__).resolve().parent.parent / "deploy" / "richmenu.json").read_text())["areas"]]


def _quick_labels(bot: BotHarness) -> list[str]:
    last = bot.line.replies[-1][1][-1]
    return [i["action"]["label"] for i in last.get("quickReply", {}).get("items", [])]


def test_every_rich_menu_tap_mid_survey_keeps_every_answer(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED[:5]:
        bot.say(text, user=U1)
    for word in MENU:
        assert bot.say(word, user=U1), word
        if word == "参加登録":  # the privacy notice takes over; the survey waits for 再開
            assert "同意" in bot.say("同意しない", user=U1)[0]
        else:
            assert "アンケートの続き" in _quick_labels(bot), word
    resumed = bot.say("再開", user=U1)
    assert "(6/" in resumed[-1], resumed
    for text in TELEMED[5:]:
        bot.say(text, user=U1)
    assert "ありがとう" in bot.say("送信", user=U1)[0]
    (row,) = _rows(bot, "answers_telemed")
    assert row["postal_code"] == "650-0001" and row["phone"] == "078-123-4567"
    assert row["since"] == "2026-04-01"


def test_a_carousel_postback_mid_survey_runs_and_keeps_the_survey(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    bot.say(TELEMED[0], user=U1)
    reply = bot.tap("詳細 E2", user=U1)
    assert "【" in reply[0] and "アンケートの続き" in _quick_labels(bot)
    assert "(2/" in bot.say("再開", user=U1)[-1]


def test_resume_mid_survey_repeats_the_current_question(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    asked = bot.say(TELEMED[0], user=U1)
    again = bot.say("resume", user=U1)
    assert again[-1] == asked[-1]
    assert "ありません" not in " ".join(again)


def test_consent_pending_blocks_only_registration(bot: BotHarness) -> None:
    assert "同意" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert "【" in bot.tap("詳細 E2", user=U1)[0]
    assert "📅" in bot.say("予定 E2", user=U1)[0]
    assert "同意" in bot.say("参加登録 E2", user=U1)[0]
    assert "参加の形" in " ".join(bot.say("同意する", user=U1))  # the latest request goes on


def test_quit_asks_first_and_no_keeps_the_question(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    asked = bot.say(TELEMED[0], user=U1)
    assert "中断しますか" in bot.say("やめる", user=U1)[0]
    assert "中断しますか" in bot.say("再開", user=U1)[0]  # 再開 shows the prompt again
    kept = bot.say("いいえ", user=U1)
    assert "の続きです" in kept[0] and kept[-1] == asked[-1]
    bot.say(TELEMED[1], user=U1)
    assert "(3/" in bot.say("再開", user=U1)[-1]  # nothing was lost or put aside


def test_a_quit_survey_continues_within_24_hours_and_not_after(bot: BotHarness) -> None:
    state = bot.app.extensions["seminar_bot"].services.state
    real = state.clock
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED[:3]:
        bot.say(text, user=U1)
    bot.say("やめる", user=U1)
    assert "24時間以内" in bot.say("はい", user=U1)[0]
    state.clock = lambda: real() + 23 * 3600
    assert "(4/" in bot.say("再開", user=U1)[-1]
    bot.say("やめる", user=U1)
    bot.say("はい", user=U1)
    state.clock = lambda: real() + 23 * 3600 + 24 * 3600 + 60
    assert "再開できるアンケートはありません" in bot.say("再開", user=U1)[0]


def test_consent_then_registration_without_a_second_dispatch(bot: BotHarness) -> None:
    assert "同意" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert "参加確定" in bot.say("同意する", user=U1)[0]
    assert "再開" not in " ".join(_quick_labels(bot))


def test_a_conversation_saved_by_another_version_is_dropped_not_misread(bot: BotHarness) -> None:
    state = bot.app.extensions["seminar_bot"].services.state
    state.save_conversation(U1, {"flow": "survey", "survey": "telemed", "pos": 3, "mode": "ask"})
    assert "登録はありません" in bot.say("登録確認", user=U1)[0]
    assert "アンケートの続き" not in _quick_labels(bot)
    state.save_conversation(U1, {"flow": "survey", "state": "someday", "survey": "telemed",
                                 "version": 1})
    assert "(1/" not in " ".join(bot.say("みなと病院", user=U1))
    assert state.conversation(U1) is None  # an unknown state ends it; the user starts afresh


def test_quit_from_a_fix_and_no_returns_to_the_fix(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED:
        bot.say(text, user=U1)
    assert "医療機関の名前" in bot.say("修正 1", user=U1)[0]
    bot.say("やめる", user=U1)
    assert "医療機関の名前" in bot.say("いいえ", user=U1)[-1]
    assert "回答の確認" in bot.say("みなと東病院", user=U1)[0]  # back to the summary


def test_after_the_privacy_notice_the_survey_comes_back_with_its_question(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED[:3]:
        bot.say(text, user=U1)
    notice = bot.say("参加登録", user=U1)
    assert notice[0] == "回答中のアンケートは保存しました。こちらが終わると続きに戻ります。"
    assert "個人情報の取り扱い" in notice[-1]
    after = bot.say("同意する", user=U1)
    assert "参加の形を選んでください" in after[0]  # the one open event, so straight to the role
    assert "の続きです" in after[-2] and "(4/" in after[-1]  # said, not silently resumed
    bot.say(TELEMED[3], user=U1)
    assert "(5/" in bot.say("再開", user=U1)[-1]
