"""Who is asking: people LINE gives no userId, and the organizer list in settings."""

from __future__ import annotations

from typing import Any

import openpyxl

from linebot_app.bot.commands import NO_USER_ID
from linebot_app.bot.context import admin_ids
from tests.conftest import ADMIN, BotHarness, text_event


def _anonymous(text: str, group: str = "C" + "9" * 32) -> dict[str, Any]:
    event = text_event(text, chat="group")
    del event["source"]["userId"]  # LINE omits it for some clients
    event["source"]["groupId"] = group
    return event


def _say_anonymously(bot: BotHarness, text: str, group: str = "C" + "9" * 32) -> list[str]:
    before = len(bot.line.replies)
    assert bot.post(_anonymous(text, group)).status_code == 200
    return bot.line.last_texts() if len(bot.line.replies) > before else []


def test_people_without_a_user_id_read_public_information(bot: BotHarness) -> None:
    (timetable,) = _say_anonymously(bot, "予定 E1")
    assert timetable.startswith("📅 行政向けICTハンズオンセミナー\n2020年4月30日(木) 19:00〜20:30")
    assert "19:00〜19:10 運営自己紹介など" in timetable
    assert _say_anonymously(bot, "イベント") == [
        "開催予定のイベント: Excelの調査票をアプリにするハンズオン"]


def test_people_without_a_user_id_cannot_register_cancel_or_answer(bot: BotHarness) -> None:
    for text in ("参加登録 E2 参加 初心者", "キャンセル E2", "登録確認", "感想 E1", "アンケート",
                 "出席", "集計"):
        assert _say_anonymously(bot, text) == [NO_USER_ID], text
    bot.store.drain(seconds=5)
    assert bot.store.registrations() == [r for r in bot.store.registrations() if r.user_id]
    assert not any(r.user_id == "" for r in bot.store.registrations())


def test_two_people_without_user_ids_share_no_booking(bot: BotHarness) -> None:
    bot.consent("")  # even a consent recorded under no id lets nobody book
    before = bot.store.registrations()
    for group in ("C" + "8" * 32, "C" + "9" * 32):  # two people, in two groups
        assert _say_anonymously(bot, "参加登録 E2 参加 初心者", group) == [NO_USER_ID]
    assert bot.store.registrations() == before
    assert not bot.store.outbox.has_pending()


def test_blank_and_malformed_admin_entries_are_ignored(bot: BotHarness) -> None:
    listed = f" {ADMIN} ,, 、Uabc, not-an-id,"
    assert admin_ids({"admin_user_ids": listed}) == {ADMIN}
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    ws = wb["settings"]
    row = next(r for r in ws.iter_rows(min_row=2) if r[0].value == "admin_user_ids")
    row[1].value = listed
    wb.save(bot.settings.workbook_path)
    bot.store.reload()
    assert "権限がありません" not in bot.say("集計", user=ADMIN)[0]
    assert bot.say("集計", user="U" + "2" * 32) == ["権限がありません"]
