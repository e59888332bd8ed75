"""End to end in headless Chromium: find the event, register by tapping, see 参加確定."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import openpyxl
import pytest

from linebot_app import create_app
from linebot_app.config import Settings
from tests.conftest import LiveServer, free_port, openapi_env

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

if CHROMIUM is None and os.environ.get("REQUIRE_BROWSER"):
    pytest.fail("REQUIRE_BROWSER is set but no chromium is installed", pytrace=False)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium: install Debian's "
                       "'chromium' package to run the browser test (.ci/run does)"),
]


@pytest.fixture
def live(tmp_path) -> Iterator[tuple[str, object]]:
    port = free_port()
    env = {"PORT": str(port), "WORKBOOK_PATH": str(tmp_path / "seminar.xlsx"),
           "DATA_DIR": str(tmp_path / "var"), **openapi_env()}
    app = create_app(Settings.from_env(env))
    with LiveServer(app, port) as server:
        yield server.url, app


@pytest.fixture
def page(live) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        tab = browser.new_page(viewport={"width": 1200, "height": 900})
        tab.set_default_timeout(15000)
        yield tab
        browser.close()


def test_register_for_the_sample_event_by_tapping(live, page, tmp_path) -> None:
    url, app = live
    page.goto(f"{url}/simulator")
    page.get_by_text("職員A").first.click()
    page.fill("#text", "イベント")
    page.click("#send")
    page.locator("[data-testid=carousel]").wait_for()
    page.locator("[data-testid=flex-button]", has_text="参加登録").first.click()
    page.locator("[data-testid=quick-reply]", has_text="同意する").click()
    page.locator("[data-testid=quick-reply]", has_text="参加").first.click()
    page.locator("[data-testid=quick-reply]", has_text="初心者").click()
    confirmed = page.locator("[data-testid=bot-text]", has_text="参加確定")
    confirmed.wait_for()
    page.screenshot(path=str(tmp_path / "registered.png"))
    assert "違反はありません" in page.inner_text("#violations")
    store = app.extensions["seminar_bot"].services.store
    assert store.drain(seconds=10)
    rows = list(openpyxl.load_workbook(tmp_path / "seminar.xlsx")["registrations"]
                .iter_rows(values_only=True))
    assert len(rows) == 2 and "職員A" in rows[1] and "confirmed" in rows[1]


def test_a_push_appears_without_reloading(live, page) -> None:
    url, app = live
    page.goto(f"{url}/simulator")
    page.get_by_text("職員B").first.click()
    page.locator(".chat-head", has_text="職員B").wait_for()
    line = app.extensions["seminar_bot"].services.line
    assert line.push("U" + "0" * 28 + "b002", [{"type": "text", "text": "繰り上げのお知らせ"}],
                     "3f2a6c1e-8d7b-4a55-9a51-0c2e7d1b9f10")
    page.locator("[data-testid=bot-text]", has_text="繰り上げのお知らせ").wait_for()
    assert page.locator(".pushed").count() == 1


def test_the_rich_menu_and_a_location_work_in_the_page(live, page) -> None:
    url, _ = live
    page.goto(f"{url}/simulator")
    page.get_by_text("住民").first.click()
    page.locator(".chat-head", has_text="住民").wait_for()
    page.locator("[data-testid=richmenu-area]").nth(5).click()  # ヘルプ
    page.locator("[data-testid=bot-text]", has_text="使い方").wait_for()
    page.select_option("#place", "34.7040,135.2060")
    page.click("#send-location")
    page.locator("[data-testid=flex-bubble]", has_text="港北中学校").wait_for()


def _chat(page, url: str, user: str):
    """Open a user's chat; returns say(text, expect): send a line, wait for the reply."""
    page.goto(f"{url}/simulator")
    page.locator(".users li", has_text=user).first.click()
    page.locator(".chat-head", has_text=user).wait_for()

    def say(text: str, expect: str) -> None:
        page.fill("#text", text)
        page.click("#send")
        page.locator("[data-testid=bot-text]", has_text=expect).last.wait_for()

    return say


def test_answer_the_telemed_survey_with_a_mistake_and_a_correction(live, page) -> None:
    url, app = live
    say = _chat(page, url, "職員B")

    say("アンケート telemed", "医療機関の名前")
    say("みなと中央クリニック", "都道府県")
    say("兵庫県", "市区町村")
    say("みなと市", "郵便番号")
    say("65", "7桁")  # the invalid answer is asked again with its reason
    say("〒650-0001", "電話番号")
    say("０７８－１２３－４５６７", "行っていますか")
    page.locator("[data-testid=quick-reply]", has_text="いいえ").click()
    page.locator("[data-testid=bot-text]", has_text="ご担当者のお名前").last.wait_for()
    say("田中", "メールアドレス")
    say("tanaka@example.jp", "回答の確認")
    page.get_by_role("button", name="修正 1", exact=True).click()
    page.locator("[data-testid=bot-text]", has_text="医療機関の名前").last.wait_for()
    say("みなと西病院", "回答の確認")
    page.locator("[data-testid=quick-reply]", has_text="送信").click()
    page.locator("[data-testid=bot-text]", has_text="ご協力ありがとうございました").wait_for()
    store = app.extensions["seminar_bot"].services.store
    assert store.drain(seconds=10)
    rows = store.rows("answers_telemed")
    assert len(rows) == 1 and rows[0]["institution"] == "みなと西病院"
    assert rows[0]["postal_code"] == "650-0001" and rows[0]["since"] == ""


MENU = ["イベント", "予定", "参加登録", "登録確認", "感想", "ヘルプ"]  # deploy/richmenu.json


def test_every_rich_menu_tap_mid_survey_keeps_the_answers(live, page) -> None:
    url, app = live
    send = _chat(page, url, "職員C")
    bot_lines = page.locator("[data-testid=bot-text], [data-testid=carousel]")

    send("アンケート telemed", "医療機関の名前")
    send("みなと北診療所", "都道府県")
    send("兵庫県", "市区町村")
    send("みなと市", "郵便番号")
    for n, word in enumerate(MENU):
        before = bot_lines.count()
        page.locator("[data-testid=richmenu-area]").nth(n).click()
        page.wait_for_function("n => document.querySelectorAll("
                               "'[data-testid=bot-text], [data-testid=carousel]').length > n",
                               arg=before)
        if word == "参加登録":  # the privacy notice takes over; the survey waits
            page.locator("[data-testid=quick-reply]", has_text="同意しない").click()
            page.locator("[data-testid=bot-text]", has_text="登録を中止しました").wait_for()
    send("再開", "郵便番号")
    send("650-0002", "電話番号")
    send("078-222-3333", "行っていますか")
    page.locator("[data-testid=quick-reply]", has_text="いいえ").click()
    page.locator("[data-testid=bot-text]", has_text="ご担当者のお名前").last.wait_for()
    send("山田", "メールアドレス")
    send("yamada@example.jp", "回答の確認")
    page.locator("[data-testid=quick-reply]", has_text="送信").click()
    page.locator("[data-testid=bot-text]", has_text="ご協力ありがとうございました").wait_for()
    assert "違反はありません" in page.inner_text("#violations")
    store = app.extensions["seminar_bot"].services.store
    assert store.drain(seconds=10)
    (row,) = store.rows("answers_telemed")
    assert (row["institution"], row["prefecture"], row["municipality"], row["postal_code"],
            row["phone"], row["contact_name"]) == (
        "みなと北診療所", "兵庫県", "みなと市", "650-0002", "078-222-3333", "山田")


PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(live) -> Iterator[object]:
    """The simulator in a phone-sized window (390×844, touch)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        tab = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
        tab.set_default_timeout(15000)
        yield tab
        browser.close()


def _on_screen(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]


def _still_in_place(page) -> None:
    """Nothing scrolled the page: the input box and the quick replies are on the screen."""
    assert page.evaluate("window.scrollY") == 0
    assert _on_screen(page, "#composer") and _on_screen(page, "#quick")


def test_at_phone_width_a_registration_takes_no_scrolling(live, phone) -> None:
    url, _ = live
    page = phone
    page.goto(f"{url}/simulator")
    assert _on_screen(page, ".chat-head") and _on_screen(page, "#messages")  # the chat first
    page.locator("[data-testid=user-select] option", has_text="職員D").wait_for(state="attached")
    page.select_option("[data-testid=user-select]", label="職員D")
    page.locator(".chat-head", has_text="職員D").wait_for()
    page.fill("#text", "イベント")
    page.click("#send", no_wait_after=True)
    page.locator("[data-testid=carousel]").wait_for()
    _still_in_place(page)
    page.locator("[data-testid=flex-button]", has_text="参加登録").first.click()
    for tap in ("同意する", "参加", "初心者"):
        button = page.locator("[data-testid=quick-reply]", has_text=tap).first
        button.wait_for()
        _still_in_place(page)
        assert _on_screen(page, f"[data-testid=quick-reply]:has-text('{tap}')")
        button.click()
    page.locator("[data-testid=bot-text]", has_text="参加確定").wait_for()
    page.wait_for_function("() => { const m = document.getElementById('messages');"
                           " return m.scrollTop + m.clientHeight >= m.scrollHeight - 2; }")
    _still_in_place(page)
    scrolled = page.evaluate("(() => { const m = document.getElementById('messages');"
                             " return [m.scrollHeight, m.clientHeight, m.scrollTop]; })()")
    assert scrolled[0] > scrolled[1] and scrolled[2] > 0  # the chat scrolled in place
    assert _on_screen(page, "[data-testid=bot-text]:has-text('参加確定')")
    for spot in ("#messages", ".chat-head", "#composer"):  # a flick past the end, anywhere
        box = page.locator(spot).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for dy in (900, -300, 900):
            page.mouse.wheel(0, dy)
        page.wait_for_timeout(100)
        _still_in_place(page)


def test_at_phone_width_the_users_and_tools_open_over_the_chat(live, phone) -> None:
    url, _ = live
    page = phone
    page.goto(f"{url}/simulator")
    assert not page.locator("#users").is_visible()  # the chat first; the list on demand
    page.click("[data-testid=tools-toggle]")
    page.locator(".users li", has_text="住民").click()  # choosing a user closes the tools
    page.locator(".chat-head", has_text="住民").wait_for()
    assert not page.locator("#users").is_visible()
    page.click("[data-testid=tools-toggle]")
    page.click("#follow")  # a tool's result shows in the chat
    page.locator("[data-testid=bot-text]").first.wait_for()
    assert not page.locator("#users").is_visible() and _on_screen(page, "#composer")
    _still_in_place(page)
