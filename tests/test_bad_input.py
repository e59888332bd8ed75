"""Inputs that used to crash a handler or the webhook: each gets a clear answer, never a traceback."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.surveys import Question
from linebot_app.features import answers
from linebot_app.simulator.platform import sign
from tests.conftest import ADMIN, SECRET, BotHarness, text_event

USER = "U" + "5" * 32


def _signed(bot: BotHarness, body: bytes) -> tuple[int, str]:
    res = bot.client.post("/callback", data=body, headers={"X-Line-Signature": sign(SECRET, body)})
    return res.status_code, res.get_data(as_text=True)


@pytest.mark.parametrize("typed", ["1" * 4400, "፩", "nan", "-inf", "1e400", "٣٣"])
def test_a_rating_answer_of_any_digits_gets_try_again(bot: BotHarness, typed: str) -> None:
    bot.registered(USER)
    assert bot.say("感想 E1", user=USER)
    reply = bot.say(typed, user=USER)
    assert reply and reply[0].startswith("もう一度お願いします"), reply


@pytest.mark.parametrize("kind", ["number", "integer", "rating", "choice", "multi_choice"])
@pytest.mark.parametrize("typed", ["1" * 4400, "፩", "nan", "-inf", "inf", "1e400"])
def test_numbers_are_finite_and_bounded_in_length(kind: str, typed: str) -> None:
    q = Question("s", 1, "k", "質問", kind, choices=("a", "b"),
                 min=1 if kind in ("number", "integer") else None,
                 max=9 if kind in ("number", "integer") else None)
    with pytest.raises(answers.Invalid):
        answers.check(q, typed)


def test_digits_of_other_scripts_are_read_as_numbers() -> None:
    q = Question("s", 1, "k", "質問", "integer")
    assert answers.check(q, "٣٤") == "34" and answers.check(q, "１２") == "12"


def test_signed_deeply_nested_body_gets_400_with_the_reason(bot: BotHarness) -> None:
    for depth in (100, 100_000):
        body = ('{"destination":"U0","events":[{"type":"message","x":' + "[" * depth
                + "]" * depth + "}]}").encode()
        status, text = _signed(bot, body)
        assert (status, "nests deeper" in text) == (400, True), depth


def test_signed_non_utf8_body_gets_400_saying_so(bot: BotHarness) -> None:
    assert _signed(bot, b'{"events": ["\xff"]}') == (400, "body is not UTF-8")


def test_unsigned_non_utf8_body_gets_bad_signature(bot: BotHarness) -> None:
    res = bot.client.post("/callback", data=b"\xff\xfe", headers={"X-Line-Signature": "x"})
    assert (res.status_code, res.get_data(as_text=True)) == (400, "bad signature")


def test_empty_webhook_event_id_is_treated_as_absent(bot: BotHarness) -> None:
    first, second = text_event("ヘルプ"), text_event("ヘルプ")
    first["webhookEventId"] = second["webhookEventId"] = ""
    body = json.dumps({"destination": "U0", "events": [first, second]}).encode()
    assert _signed(bot, body)[0] == 200
    assert len(bot.line.replies) == 2  # "" is not an id, so the second is not a "redelivery"


def test_a_signed_body_with_a_number_too_long_to_read_gets_400_with_the_reason(
        bot: BotHarness) -> None:
    body = ('{"destination":"U0","events":[{"type":"message","timestamp":' + "1" * 5000
            + "}]}").encode()
    status, text = _signed(bot, body)
    assert status == 400 and text.startswith("body holds a number too long to read"), text


def _escaped(bot: BotHarness, text: str) -> tuple[int, str]:
    """A text event as LINE's JSON may carry it: every non-ASCII letter escaped, so a lone
    half of a UTF-16 pair arrives as \\udXXX."""
    body = json.dumps({"destination": "U" + "f" * 32, "events": [text_event(text, user=USER)]},
                      ensure_ascii=True).encode()
    assert b"\\ud800" in body or b"\\udfff" in body
    before = len(bot.line.replies)
    status, _ = _signed(bot, body)
    bot.work()
    replies = bot.line.replies[before:]
    return status, "\n".join(m["text"] for _, sent in replies for m in sent if "text" in m)


@pytest.mark.parametrize("text", ["駐車場\ud800ありますか", "\udfff", "ヘルプ\ud800",
                                  "しらない話題\ud800について"])
def test_a_lone_surrogate_in_a_text_is_cleaned_before_anything_reads_it(
        bot: BotHarness, text: str) -> None:
    status, said = _escaped(bot, text)
    assert status == 200 and said  # answered, never a traceback


def test_a_question_with_a_lone_surrogate_is_kept_as_valid_text(bot: BotHarness) -> None:
    _escaped(bot, "しらない話題\ud800について")
    bot.store.drain(seconds=5)
    texts = [r["text"] for r in bot.store.rows("unanswered")]
    assert "しらない話題\ufffdについて" in texts


@pytest.mark.parametrize("size", ["፩", "1" * 4400, "0", "-3", "四", "101"])
def test_a_room_size_that_is_not_a_plain_number_gets_the_usage(bot: BotHarness,
                                                                size: str) -> None:
    reply = bot.say(f"部屋割り E2 {size}", user=ADMIN)
    assert reply and reply[0].startswith("使い方: 部屋割り <イベント> [1部屋の人数]"), reply


def test_a_room_size_in_full_width_digits_is_read(bot: BotHarness) -> None:
    bot.registered(USER, "E2")
    reply = bot.say("部屋割り E2 ４", user=ADMIN)
    assert "1部屋4名まで" in reply[0], reply


def test_stats_skip_ratings_an_organizer_typed_that_are_not_plain_numbers(bot: BotHarness) -> None:
    for n, rating in enumerate(["4", "፩", "1" * 4400, "2"]):
        bot.store.add("feedback", {"id": f"F{n}", "event_id": "E1", "user_id": f"U{n}",
                                   "rating": rating})
    reply = bot.say("集計 E1", user=ADMIN)
    assert "感想: 4件 (平均 3.0)" in reply[0], reply


WORDS = ["\ud800", "\udfff", "\x00", "あ", "E2", " ", "参加登録", "キャンセル", "部屋割り", "出席",
         "1" * 4400, "፩", "٣", "=1+1", "?", "\n", "感想", "アンケート", "未回答", "😀"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(typed=st.one_of(st.text(max_size=40), st.lists(st.sampled_from(WORDS), max_size=6).map(
    "".join)), admin=st.booleans())
def test_any_text_anyone_types_gets_a_reply_and_no_traceback(bot: BotHarness, typed: str,
                                                            admin: bool) -> None:
    body = json.dumps({"destination": "U" + "f" * 32, "events": [
        text_event(typed, user=ADMIN if admin else USER)]}, ensure_ascii=True).encode()
    before = len(bot.line.replies)
    status, text = _signed(bot, body)
    assert status == 200, text
    if typed.strip():
        assert len(bot.line.replies) == before + 1  # (a handler error fails the test too)
