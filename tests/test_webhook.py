"""POST /callback: signatures, body limits, batches, redeliveries and the real fixture events."""

from __future__ import annotations

import copy
import json
import logging
import re

from ulid import ULID

from linebot_app import create_app
from linebot_app.config import SIMULATOR_SECRET
from linebot_app.features import facilities
from linebot_app.simulator.platform import sign
from tests.conftest import ADMIN, SECRET, BotHarness, build_harness, fixture_path, text_event


def test_missing_signature_gets_400(bot: BotHarness) -> None:
    res = bot.client.post("/callback", data=b'{"destination":"x","events":[]}')
    assert res.status_code == 400


def test_invalid_signature_gets_400(bot: BotHarness) -> None:
    res = bot.post(text_event("ヘルプ"), secret="another-secret")
    assert res.status_code == 400
    assert bot.line.replies == []


def _signed(bot: BotHarness, body: bytes, signed_over: bytes | None = None) -> int:
    signature = sign(SECRET, body if signed_over is None else signed_over)
    return bot.client.post("/callback", data=body, headers={"X-Line-Signature": signature}).status_code


def test_signature_over_different_bytes_gets_400(bot: BotHarness) -> None:
    body = json.dumps({"destination": "x", "events": []}).encode()
    assert _signed(bot, body + b" ", signed_over=body) == 400


def test_body_over_one_megabyte_gets_413(bot: BotHarness) -> None:
    assert _signed(bot, b"{" + b" " * (1024 * 1024 + 10) + b"}") == 413


def test_signed_body_that_is_not_json_gets_400(bot: BotHarness) -> None:
    assert _signed(bot, b"this is not json") == 400


def test_signed_non_utf8_body_gets_400(bot: BotHarness) -> None:
    assert _signed(bot, b"\xff\xfe{}") == 400


def test_empty_event_list_gets_200(bot: BotHarness) -> None:
    assert _signed(bot, b'{"destination": "U0", "events": []}') == 200  # LINE's "verify"
    assert bot.line.replies == bot.line.pushes == []


def test_healthz_answers_200(bot: BotHarness) -> None:
    res = bot.client.get("/healthz")
    assert (res.status_code, res.get_data(as_text=True)) == (200, "ok")


def test_every_event_in_a_batch_is_handled(bot: BotHarness) -> None:
    events = [text_event("ヘルプ"), text_event("予定 E1"), text_event("イベント")]
    assert bot.post(*events).status_code == 200
    assert [token for token, _ in bot.line.replies] == [e["replyToken"] for e in events]
    firsts = [_first_text(messages) for _, messages in bot.line.replies]
    assert "使い方" in firsts[0] and "運営自己紹介など" in firsts[1]
    assert "開催予定のイベント" in firsts[2]


def _location(lat: float, lng: float) -> dict:
    event = text_event("x")
    event["message"] = {"id": "3", "type": "location", "latitude": lat, "longitude": lng,
                        "address": "神戸市"}
    return event


def _first_text(messages: list[dict]) -> str:
    return messages[0].get("text") or messages[0]["altText"]


def test_one_failing_event_does_not_stop_the_others(bot: BotHarness, fail_on_handler_errors,
                                                    monkeypatch) -> None:
    real = facilities.on_location

    def broken_at_one_place(ctx: object, lat: float, lng: float) -> list:
        if (lat, lng) == (0.0, 0.0):
            raise RuntimeError("the location lookup broke")
        return real(ctx, lat, lng)

    monkeypatch.setattr(facilities, "on_location", broken_at_one_place)
    ask, plan = text_event("ヘルプ"), text_event("予定 E1")
    bad, place = _location(0.0, 0.0), _location(34.69, 135.19)
    assert bot.post(ask, bad, place, plan).status_code == 200
    assert [str(err) for err, _ in fail_on_handler_errors] == ["the location lookup broke"]
    fail_on_handler_errors.clear()
    answered = {token: messages for token, messages in bot.line.replies}
    assert list(answered) == [ask["replyToken"], place["replyToken"], plan["replyToken"]]
    assert "使い方" in _first_text(answered[ask["replyToken"]])
    assert "近くの施設" in _first_text(answered[place["replyToken"]])  # same handler, other event
    assert "運営自己紹介など" in _first_text(answered[plan["replyToken"]])


def test_event_missing_a_common_field_is_skipped_and_the_rest_handled(bot: BotHarness) -> None:
    broken = text_event("ヘルプ")
    del broken["webhookEventId"]
    good = text_event("ヘルプ")
    assert bot.post(broken, good).status_code == 200
    ((token, messages),) = bot.line.replies
    assert token == good["replyToken"] and "使い方" in _first_text(messages)


def test_redelivered_event_is_not_handled_again(bot: BotHarness) -> None:
    event = text_event("ヘルプ")
    bot.post(event)
    redelivery = copy.deepcopy(event)
    redelivery["deliveryContext"]["isRedelivery"] = True
    bot.post(redelivery)
    assert len(bot.line.replies) == 1


def test_handled_ids_survive_a_restart(tmp_path) -> None:
    first = build_harness(tmp_path)
    event = text_event("ヘルプ")
    first.post(event)
    second = build_harness(tmp_path)
    second.post(event)
    assert len(first.line.replies) == 1
    assert second.line.replies == []


def test_handled_ids_are_kept_at_least_seven_days(tmp_path) -> None:
    harness = build_harness(tmp_path)
    state = harness.app.extensions["seminar_bot"].services.state
    now = [1_000_000.0]
    state.clock = lambda: now[0]
    assert state.claim_event("E-old")
    state.finish_event("E-old")
    now[0] += 7 * 86400 + 60
    state.forget_old_events()
    assert not state.claim_event("E-old")
    now[0] += 2 * 86400
    state.forget_old_events()
    assert state.claim_event("E-old")


NOT_FOUND = "お探しの情報が見つかりませんでした"
GREETED = "こんにちは。市のよくある質問と"
HINT = "テキストで話しかけてください。"
# What each of the SDK's real webhook events gets back, in the fixture's order: a part of the
# one reply's first text, or None for no reply at all.
FIXTURE_ANSWERS = [
    ("message", "text", GREETED),  # "Hello, world" in a one-to-one chat: a greeting back
    ("message", "image", None),  # in a room, and not addressed to the bot
    ("message", "video", HINT),
    ("message", "audio", HINT),
    ("message", "location", "近くの施設: "),
    ("message", "sticker", HINT),
    ("follow", None, "友だち追加ありがとうございます"),
    ("unfollow", None, None),
    ("join", None, "招待ありがとうございます"),
    ("leave", None, None),
    ("postback", None, NOT_FOUND),  # data that is no command is a query like typed text
    ("beacon", None, None),
    ("beacon", None, None),
    ("accountLink", None, None),
    ("message", "text", None),  # "Hello, world" in a group: no command, no mention
    ("message", "text", None),  # ... and in a room
    ("postback", None, NOT_FOUND),  # with a date parameter
    ("postback", None, NOT_FOUND),  # with a time parameter
    ("postback", None, NOT_FOUND),  # with a datetime parameter
    ("memberJoined", None, None),
    ("memberLeft", None, None),
    ("message", "file", HINT),
    ("unsend", None, None),
    ("videoPlayComplete", None, None),
    ("message", "image", HINT),  # one to one
    ("message", "text", GREETED),  # "Hello, world" again, one to one
    ("messageEdited", None, None),  # not in this SDK's models: parsed as an unknown event
    ("undefined", None, None),
]


def test_every_fixture_event_gets_its_own_answer(bot: BotHarness) -> None:
    payload = json.loads(fixture_path("line-bot-sdk-webhooks", "webhook.json").read_text())
    assert [(e["type"], e.get("message", {}).get("type") if e["type"] == "message" else None)
            for e in payload["events"]] == [(k, t) for k, t, _ in FIXTURE_ANSWERS]
    for event, (kind, _, answer) in zip(payload["events"], FIXTURE_ANSWERS, strict=True):
        before = len(bot.line.replies)
        assert bot.post({**event, "webhookEventId": str(ULID())}).status_code == 200
        replies = bot.line.replies[before:]
        if answer is None:
            assert replies == [], kind
            continue
        ((token, messages),) = replies
        assert token == event["replyToken"] and answer in _first_text(messages), kind
    assert bot.line.pushes == bot.line.multicasts == []
    assert not bot.store.outbox.has_pending()  # none of them writes a row


def test_a_batch_whose_events_share_one_id_is_handled_once(bot: BotHarness) -> None:
    payload = json.loads(fixture_path("line-bot-sdk-webhooks", "webhook.json").read_text())
    assert len({e["webhookEventId"] for e in payload["events"]}) == 1
    assert _signed(bot, json.dumps(payload).encode()) == 200
    ((token, messages),) = bot.line.replies  # only the first event: the rest look redelivered
    assert token == payload["events"][0]["replyToken"] and GREETED in messages[0]["text"]


def test_a_sticker_in_a_one_to_one_chat_gets_a_hint(bot: BotHarness) -> None:
    event = text_event("x")
    event["message"] = {"id": "2", "type": "sticker", "packageId": "1", "stickerId": "1",
                        "stickerResourceType": "STATIC", "quoteToken": "q"}
    bot.post(event)
    assert "ヘルプ" in bot.line.last_texts()[0]


def test_logs_hold_no_message_text_and_mask_user_ids(bot: BotHarness, caplog) -> None:
    user = "U" + "7" * 32
    with caplog.at_level(logging.INFO):
        bot.say("秘密の相談内容です", user=user)
        bot.consent(user)
        bot.say("参加登録 E2 参加 初心者", user=user)
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "秘密の相談内容" not in text
    assert user not in text
    assert "U77…777" in text


def test_simulator_is_off_when_credentials_are_set(tmp_path) -> None:
    harness = build_harness(tmp_path)
    assert harness.client.get("/simulator").status_code == 404


def test_simulator_mode_uses_its_own_credentials(tmp_path) -> None:
    harness = build_harness(tmp_path, SIMULATOR="1", LINE_CHANNEL_SECRET="",
                            LINE_CHANNEL_ACCESS_TOKEN="")
    assert harness.settings.channel_secret == SIMULATOR_SECRET
    res = harness.client.get("/simulator")
    assert res.status_code == 200 and "ユーザーを選ぶ" in res.get_data(as_text=True)


def test_create_app_without_settings_reads_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBOOK_PATH", str(tmp_path / "wb.xlsx"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("LINE_CHANNEL_SECRET", raising=False)
    monkeypatch.delenv("LINE_CHANNEL_ACCESS_TOKEN", raising=False)
    app = create_app()
    res = app.test_client().get("/simulator")
    assert res.status_code == 200 and "ユーザーを選ぶ" in res.get_data(as_text=True)
    assert (tmp_path / "wb.xlsx").exists()


def test_no_log_line_holds_a_full_user_id_even_when_a_push_fails(bot: BotHarness, caplog) -> None:
    """A waiting person's notice that LINE does not take is logged by its key, which names
    the registration, not the person; and every line written is masked at any level."""
    from linebot_app.logs import CloudFormatter, TextFormatter, TraceFilter

    waiting = "U" + "6" * 32
    bot.store.add("registrations", {
        "id": "R-wait", "created_at": "2026-11-01T10:00:00.000+09:00", "event_id": "E2",
        "user_id": waiting, "role": "participant", "level": "beginner", "status": "waitlisted"})
    bot.line.push = lambda to, messages, key: False  # LINE refuses every push
    with caplog.at_level(logging.DEBUG):
        bot.say("リマインド E2", user=ADMIN)
        bot.work()
        logging.getLogger("x").debug("about %s, a user", waiting)  # a careless line
    refused = [r for r in caplog.records if "not sent" in r.getMessage()]
    assert refused and waiting not in refused[0].getMessage()  # the key has no user id
    written = []
    for fmt in (TextFormatter(), CloudFormatter("proj")):
        for record in caplog.records:
            TraceFilter().filter(record)
            written.append(fmt.format(record))
    assert written and not re.search(r"U[0-9a-f]{32}", "\n".join(written))
    assert "U66…666" in "\n".join(written)
