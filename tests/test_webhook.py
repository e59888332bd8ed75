"""POST /callback: signatures, body limits, batches, redeliveries and the real fixture events."""

from __future__ import annotations

import copy
import json
import logging

from ulid import ULID

from linebot_app import create_app, facilities
from linebot_app.simulator.platform import sign
from tests.conftest import SECRET, BotHarness, build_harness, fixture_path, text_event


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
    assert _signed(bot, b'{"destination": "U0", "events": []}') == 200


def test_healthz_answers_200(bot: BotHarness) -> None:
    assert bot.client.get("/healthz").status_code == 200


def test_every_event_in_a_batch_is_handled(bot: BotHarness) -> None:
    res = bot.post(text_event("ヘルプ"), text_event("予定 E1"), text_event("イベント"))
    assert res.status_code == 200
    assert len(bot.line.replies) == 3


def test_one_failing_event_does_not_stop_the_others(bot: BotHarness, fail_on_handler_errors,
                                                    monkeypatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("the location lookup broke")

    monkeypatch.setattr(facilities, "on_location", broken)
    bad = text_event("x")
    bad["message"] = {"id": "3", "type": "location", "latitude": 34.69, "longitude": 135.19,
                      "address": "神戸市"}
    res = bot.post(text_event("ヘルプ"), bad, text_event("予定 E1"))
    assert res.status_code == 200
    assert [str(err) for err, _ in fail_on_handler_errors] == ["the location lookup broke"]
    fail_on_handler_errors.clear()
    assert len(bot.line.replies) == 2
    assert "使い方" in bot.line.replies[0][1][0]["text"]
    assert "E1" in bot.line.last_texts()[0] or "2020" in bot.line.last_texts()[0]


def test_event_missing_a_common_field_is_skipped_and_the_rest_handled(bot: BotHarness) -> None:
    broken = text_event("ヘルプ")
    del broken["webhookEventId"]
    res = bot.post(broken, text_event("ヘルプ"))
    assert res.status_code == 200
    assert len(bot.line.replies) == 1


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
    now[0] += 7 * 86400 + 60
    state.forget_old_events()
    assert not state.claim_event("E-old")
    now[0] += 2 * 86400
    state.forget_old_events()
    assert state.claim_event("E-old")


def test_every_fixture_event_type_is_handled_without_5xx(bot: BotHarness) -> None:
    payload = json.loads(fixture_path("line-bot-sdk-webhooks", "webhook.json").read_text())
    for event in payload["events"]:
        event = {**event, "webhookEventId": str(ULID())}
        assert bot.post(event).status_code == 200, event["type"]
    assert _signed(bot, json.dumps(payload).encode()) == 200


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


def test_simulator_is_on_with_credentials_and_simulator_1(tmp_path) -> None:
    harness = build_harness(tmp_path, SIMULATOR="1")
    assert harness.client.get("/simulator").status_code == 200


def test_create_app_without_settings_reads_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBOOK_PATH", str(tmp_path / "wb.xlsx"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("LINE_CHANNEL_SECRET", raising=False)
    monkeypatch.delenv("LINE_CHANNEL_ACCESS_TOKEN", raising=False)
    app = create_app()
    assert app.test_client().get("/simulator").status_code == 200
    assert (tmp_path / "wb.xlsx").exists()
