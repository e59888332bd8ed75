"""The simulator plays LINE over real HTTP; the bot reaches it through the real SDK."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
import requests

from linebot_app import create_app
from linebot_app.config import Settings
from linebot_app.simulator.platform import USERS, Platform
from tests.conftest import LiveServer, eventually, fixture_path, free_port, openapi_env

BY_NAME = {u.name: u.user_id for u in USERS}
STAFF_A, STAFF_B, RESIDENT, ORGANIZER = (BY_NAME[n] for n in ("職員A", "職員B", "住民", "運営者"))


class Sim:
    """A live bot in simulator mode, and helpers to act as a simulated user."""

    def __init__(self, url: str, platform: Platform, workbook: Path, app) -> None:
        self.url, self.platform, self.workbook, self.app = url, platform, workbook, app

    def send(self, user: str, **payload) -> int:
        res = requests.post(f"{self.url}/simulator/api/send", json={"user": user, **payload},
                            timeout=30)
        return res.json()["status"]

    def history(self, user: str) -> list[dict]:
        res = requests.get(f"{self.url}/simulator/api/history", params={"user": user}, timeout=10)
        return res.json()["entries"]

    def bot_texts(self, user: str) -> list[str]:
        return [m.get("text") or m.get("altText") for e in self.history(user)
                if e["direction"] == "bot" for m in e["payload"]]


def wait_until_flushed(sim: Sim, seconds: float = 10) -> None:
    """Flush until the outbox is empty (the server's own flusher may hold the lease)."""
    store = sim.app.extensions["seminar_bot"].services.store

    def flushed() -> bool:
        store.flush()
        return not store.outbox.has_pending()

    eventually(flushed, seconds, every=0.2)


@pytest.fixture
def sim(tmp_path) -> Iterator[Sim]:
    port = free_port()
    env = {"PORT": str(port), "WORKBOOK_PATH": str(tmp_path / "seminar.xlsx"),
           "DATA_DIR": str(tmp_path / "var"), **openapi_env()}
    app = create_app(Settings.from_env(env))
    with LiveServer(app, port) as server:
        platform = app.extensions["line_simulator"]
        yield Sim(server.url, platform, tmp_path / "seminar.xlsx", app)
    assert platform.violations == []


def test_text_goes_through_a_signed_webhook_and_the_sdk_reply(sim: Sim) -> None:
    assert sim.send(STAFF_A, kind="text", text="予定 E1") == 200
    assert "運営自己紹介など" in sim.bot_texts(STAFF_A)[-1]
    (call,) = [c for c in sim.platform.calls if c["endpoint"] == "reply"]
    assert call["headers"]["Authorization"].startswith("Bearer ")
    assert "line-bot-sdk-python" in call["headers"].get("User-Agent", "")


def test_built_events_carry_every_field_and_match_webhook_yml(sim: Sim) -> None:
    from linebot_app.simulator.openapi import SpecChecker

    spec = SpecChecker(fixture_path("line-openapi", "webhook.yml"))
    event = sim.platform.text_event(STAFF_A, "こんにちは")
    for key in ("webhookEventId", "deliveryContext", "mode", "timestamp", "replyToken"):
        assert key in event
    assert len(event["webhookEventId"]) == 26 and event["message"]["quoteToken"]
    body = {"destination": "U" + "f" * 32, "events": [event,
            sim.platform.event(STAFF_A, "postback", postback={"data": "x"}),
            sim.platform.event(STAFF_A, "follow", follow={"isUnblocked": False}),
            sim.platform.event(STAFF_A, "unfollow")]}
    assert spec.errors("CallbackRequest", body) == []


def test_registration_through_the_simulator_lands_in_the_workbook(sim: Sim) -> None:
    sim.send(STAFF_A, kind="postback", data="参加登録 E2", displayText="参加登録")
    assert "個人情報" in sim.bot_texts(STAFF_A)[-1]
    sim.send(STAFF_A, kind="text", text="同意する")
    sim.send(STAFF_A, kind="text", text="参加登録 E2 参加")
    sim.send(STAFF_A, kind="text", text="参加登録 E2 参加 初心者")
    assert "参加確定" in sim.bot_texts(STAFF_A)[-1]
    wait_until_flushed(sim)
    ws = openpyxl.load_workbook(sim.workbook)["registrations"]
    row = [c.value for c in ws[2]]
    assert "職員A" in row and "confirmed" in row  # display name came from the profile API


def test_waitlist_promotion_arrives_as_a_push(sim: Sim) -> None:
    wb = openpyxl.load_workbook(sim.workbook)
    wb["events"]["H3"] = 1
    wb.save(sim.workbook)
    sim.app.extensions["seminar_bot"].services.store.reload()
    for user in (STAFF_A, STAFF_B):
        sim.send(user, kind="text", text="同意する")
        sim.send(user, kind="text", text="参加登録 E2 参加 経験者")
        sim.send(user, kind="text", text="同意する")
    assert "キャンセル待ち(1番目)" in sim.bot_texts(STAFF_B)[-1]
    sim.send(STAFF_A, kind="text", text="キャンセル E2")
    pushes = eventually(lambda: [e for e in sim.history(STAFF_B) if e["kind"] == "push"],
                        timeout=10, every=0.1)  # sent by the delivery worker, not the webhook
    time.sleep(0.5)
    assert pushes == [e for e in sim.history(STAFF_B) if e["kind"] == "push"]
    assert len(pushes) == 1 and "参加が確定" in pushes[0]["payload"][0]["text"]
    (call,) = [c for c in sim.platform.calls if c["endpoint"] == "push"]
    assert len(call["headers"]["X-Line-Retry-Key"]) == 36


def test_invalid_message_is_refused_and_shown_as_a_violation(sim: Sim) -> None:
    token = sim.platform.text_event(STAFF_A, "x")["replyToken"]
    bad = {"replyToken": token, "messages": [{"type": "text"}] * 6}
    res = requests.post(f"{sim.url}/simulator/line/v2/bot/message/reply", json=bad, timeout=10,
                        headers={"Authorization": f"Bearer {sim.platform.token}"})
    assert res.status_code == 400
    page = requests.get(f"{sim.url}/simulator/api/history", params={"user": STAFF_A},
                        timeout=10).json()
    assert page["validating"] and page["violations"][0]["endpoint"] == "reply"
    assert page["validation"].startswith("LINE OpenAPI" if sim.platform.api_spec else "line-bot-sdk")
    sim.platform.violations.clear()


def test_api_without_the_token_gets_401(sim: Sim) -> None:
    res = requests.post(f"{sim.url}/simulator/line/v2/bot/message/push", json={}, timeout=10)
    assert res.status_code == 401


def test_a_reply_token_works_once(sim: Sim) -> None:
    token = sim.platform.text_event(STAFF_A, "x")["replyToken"]
    body = {"replyToken": token, "messages": [{"type": "text", "text": "hi"}]}
    headers = {"Authorization": f"Bearer {sim.platform.token}"}
    url = f"{sim.url}/simulator/line/v2/bot/message/reply"
    assert requests.post(url, json=body, headers=headers, timeout=10).status_code == 200
    assert requests.post(url, json=body, headers=headers, timeout=10).status_code == 400


def test_push_with_a_repeated_retry_key_is_sent_once(sim: Sim) -> None:
    line = sim.app.extensions["seminar_bot"].services.line
    message = [{"type": "text", "text": "お知らせ"}]
    assert line.push(STAFF_B, message, "0f8fad5b-d9cb-469f-a165-70867728950e")
    assert line.push(STAFF_B, message, "0f8fad5b-d9cb-469f-a165-70867728950e")
    assert sim.bot_texts(STAFF_B) == ["お知らせ"]


def test_follow_and_unfollow(sim: Sim) -> None:
    assert sim.send(RESIDENT, kind="follow") == 200
    assert "友だち追加ありがとうございます" in sim.bot_texts(RESIDENT)[-1]
    told = len(sim.history(RESIDENT))
    assert sim.send(RESIDENT, kind="unfollow") == 200
    assert [e["direction"] for e in sim.history(RESIDENT)[told:]] == ["user"]  # no answer
    assert [c["endpoint"] for c in sim.platform.calls] == ["reply"]  # only the greeting


def test_loading_animation_endpoint_is_served(sim: Sim) -> None:
    res = requests.post(f"{sim.url}/simulator/line/v2/bot/chat/loading/start", timeout=10,
                        json={"chatId": STAFF_A, "loadingSeconds": 5},
                        headers={"Authorization": f"Bearer {sim.platform.token}"})
    assert res.status_code == 202


def test_profile_endpoint_is_served_through_the_sdk(sim: Sim) -> None:
    line = sim.app.extensions["seminar_bot"].services.line
    assert line.display_name(STAFF_B) == "職員B"
    assert line.display_name("U" + "9" * 32) == ""


def test_page_is_in_japanese(sim: Sim) -> None:
    html = requests.get(f"{sim.url}/simulator", timeout=10).text
    assert 'lang="ja"' in html and "ユーザーを選ぶ" in html
    assert dt.date.today()  # the page needs no server-side date


def test_without_the_openapi_file_the_sdk_models_still_refuse_bad_messages() -> None:
    platform = Platform(secret="s", token="t", webhook_url=None)
    platform.api_spec = None  # as on a clone without ../shared
    bad = {"replyToken": "r", "messages": [{"type": "text", "text": "x"}] * 6}
    assert platform.check("reply", "ReplyMessageRequest", bad)
    assert platform.check("reply", "ReplyMessageRequest", {**bad, "messages": bad["messages"][:5]}) == []
    assert platform.validation.startswith("line-bot-sdk")


def test_a_send_goes_to_its_own_app_whatever_host_the_request_names(sim: Sim) -> None:
    from flask import Flask, request

    caught: list[str] = []  # what a stranger's host would receive
    stranger = Flask("stranger")

    @stranger.post("/callback")
    def callback() -> str:
        caught.append(request.headers.get("X-Line-Signature", ""))
        return "ok"

    with LiveServer(stranger) as other:
        host = other.url.removeprefix("http://")
        res = requests.post(f"{sim.url}/simulator/api/send", timeout=10, headers={"Host": host},
                            json={"user": STAFF_A, "kind": "text", "text": "予定 E1"})
        assert res.json()["status"] == 200
    assert caught == []  # the signature never left this app
    assert "運営自己紹介など" in sim.bot_texts(STAFF_A)[-1]
