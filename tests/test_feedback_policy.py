"""Who may send 感想: registrants of an event that has started, unless organizers open it to
anyone with settings.feedback_audience."""

from __future__ import annotations

from tests.conftest import BotHarness

GUEST, MEMBER = "U" + "6" * 32, "U" + "7" * 32
FIRST_QUESTION = "今回の満足度を1〜5で教えてください"


def test_a_registrant_of_a_past_event_is_asked_the_questions(bot: BotHarness) -> None:
    bot.registered(MEMBER)
    assert FIRST_QUESTION in bot.say("感想 E1", user=MEMBER)[-1]
    assert FIRST_QUESTION in bot.say("感想", user=MEMBER)[-1]  # their latest started event


def test_someone_without_a_registration_is_told_why(bot: BotHarness) -> None:
    reply = bot.say("感想 E1", user=GUEST)
    assert reply == ["「行政向けICTハンズオンセミナー」の感想は、参加登録した方にお願いしています。"
                     "「登録確認」で登録を確かめられます。"]
    assert "いま感想をお送りいただけるイベントはありません" in bot.say("感想", user=GUEST)[0]
    assert "雑感" not in " ".join(bot.say("5", user=GUEST))  # no survey was started


def test_a_cancelled_registration_does_not_count(bot: BotHarness) -> None:
    bot.registered(MEMBER, status="cancelled")
    assert "参加登録した方にお願いしています" in bot.say("感想 E1", user=MEMBER)[0]


def test_feedback_waits_until_the_event_has_started(bot: BotHarness) -> None:
    bot.registered(MEMBER, event="E2")
    assert "開催後 (2026年12月29日(火) 14:00〜16:00) に受け付けます" in bot.say(
        "感想 E2", user=MEMBER)[0]


def test_organizers_can_open_feedback_to_anyone(bot: BotHarness) -> None:
    bot.setting("feedback_audience", "anyone")
    assert FIRST_QUESTION in bot.say("感想 E1", user=GUEST)[-1]
    assert "開催後" in bot.say("感想 E2", user=GUEST)[0]  # still only after the start


def test_check_reports_a_feedback_audience_it_cannot_read(bot: BotHarness) -> None:
    bot.setting("feedback_audience", "誰でも")
    problems = [str(p) for p in bot.store.workbook().problems]
    assert any("feedback_audience の「誰でも」は registrants" in p for p in problems), problems
    assert "参加登録した方にお願いしています" in bot.say("感想 E1", user=GUEST)[0]
