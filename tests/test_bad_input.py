"""Inputs that used to crash a handler or the webhook: each gets a clear answer, never a traceback."""

from __future__ import annotations

import json

import pytest

from domain.surveys import Question
from linebot_app.features import answers
from linebot_app.simulator.platform import sign
from tests.conftest import SECRET, BotHarness, text_event

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
