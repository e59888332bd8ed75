"""What is stored is what the person confirmed, and what the organizer typed."""

from __future__ import annotations

from tests.conftest import ADMIN, BotHarness
from tests.test_surveys import TELEMED, _rows

U1 = "U" + "1" * 32


def test_a_fix_that_skips_later_questions_removes_their_answers(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED:
        bot.say(text, user=U1)
    bot.say("修正 6", user=U1)
    summary = bot.say("いいえ", user=U1)[-1]
    assert "2026-04-01" not in summary  # the confirmed summary no longer shows the skipped ones
    bot.say("送信", user=U1)
    (row,) = _rows(bot, "answers_telemed")
    assert row["since"] in (None, "") and row["patients"] in (None, "")
    assert row["institution"] == TELEMED[0]


def test_a_fix_that_opens_later_questions_asks_them_before_the_summary(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED[:5] + ["いいえ"] + TELEMED[9:]:  # no online care: 7-9 are skipped
        bot.say(text, user=U1)
    bot.say("修正 6", user=U1)
    reply = bot.say("はい", user=U1)
    assert "いつから" in reply[-1]  # question 7, never asked before
    assert "回答の確認" not in " ".join(bot.say("送信", user=U1))  # not stored half-done
    assert "いつから" in bot.line.last_texts()[-1]
    assert "対象の患者" in bot.say("令和8年4月1日", user=U1)[-1]
    assert "処方箋" in bot.say("1", user=U1)[-1]
    assert "回答の確認" in bot.say("はい", user=U1)[0]
    bot.say("送信", user=U1)
    (row,) = _rows(bot, "answers_telemed")
    assert (row["online_care"], row["since"], row["patients"], row["prescription"]) == (
        "はい", "2026-04-01", "初診の患者", "はい")
    assert row["contact_name"] == "田中"


def test_announce_keeps_the_organizers_line_breaks(bot: BotHarness) -> None:
    bot.consent(U1)
    bot.say("参加登録 E2 参加 初心者", user=U1)
    bot.say("お知らせ E2 会場が変わりました。\n新しい会場: 5階 大会議室\n\n持ち物も確認を", user=ADMIN)
    assert bot.line.received(U1)[-1].endswith(
        "会場が変わりました。\n新しい会場: 5階 大会議室\n\n持ち物も確認を")


def _feedback(bot: BotHarness, *answers: str) -> list[str]:
    replies = [bot.say(text, user=U1) for text in answers]
    return replies[-1]


def test_a_second_feedback_edits_the_first_and_a_skip_keeps_the_earlier_answer(
        bot: BotHarness) -> None:
    bot.registered(U1)
    bot.say("感想 E1", user=U1)
    _feedback(bot, "4", "とてもよかった", "スキップ", "スキップ", "送信")
    assert "前回の回答を修正しますか" in bot.say("感想 E1", user=U1)[-1]
    assert "満足度" in bot.say("はい", user=U1)[-1]
    summary = _feedback(bot, "スキップ", "スキップ", "会議録の要約", "スキップ")[-1]
    assert "4" in summary and "とてもよかった" in summary and "会議録の要約" in summary
    bot.say("送信", user=U1)
    (row,) = [r for r in _rows(bot, "feedback") if r["user_id"] == U1]
    assert (row["rating"], row["impression"], row["use_cases"]) == (4, "とてもよかった", "会議録の要約")
