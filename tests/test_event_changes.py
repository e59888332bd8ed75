"""Event changes reach the people they affect: 中止 and 変更 notices, and what 詳細 and
登録確認 say afterwards."""

from __future__ import annotations

import datetime as dt
import time

import openpyxl

from linebot_app.ops import scheduler
from tests.conftest import JST, BotHarness

USERS = [f"U{n:032x}" for n in range(0x51, 0x58)]
COLUMN = {"date": "C", "start": "D", "venue": "F", "status": "K", "capacity": "H"}
E2_ROW = 3  # the header, E1, then E2


def _register(bot: BotHarness, user: str, role: str = "参加") -> None:
    bot.consent(user)
    bot.say(f"参加登録 E2 {role} 初心者", user=user)


def _edit(bot: BotHarness, row: int = E2_ROW, **cells: str) -> None:
    """What an organizer does: open the workbook, change cells of a row, save."""
    bot.store.drain(seconds=5)
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    for column, value in cells.items():
        wb["events"][f"{COLUMN[column]}{row}"] = value
    wb.save(bot.settings.workbook_path)


def _round(bot: BotHarness) -> scheduler.Round:
    return scheduler.tick(bot.app.extensions["seminar_bot"].services)


def _deliveries(bot: BotHarness) -> list[dict]:
    bot.store.drain(seconds=5)
    rows = list(openpyxl.load_workbook(bot.settings.workbook_path)["deliveries"]
                .iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=False)) for r in rows[1:] if any(r)]


def _pushes_to(bot: BotHarness, user: str) -> list[tuple[list[dict], str]]:
    sent = [(msgs, key) for to, msgs, key in bot.line.pushes if to == user]
    return sent + [(msgs, key) for to, msgs, key in bot.line.multicasts if user in to]


def _quick_labels(bot: BotHarness) -> list[str]:
    last = bot.line.replies[-1][1][-1]
    return [i["action"]["label"] for i in last.get("quickReply", {}).get("items", [])]


def test_cancelling_tells_each_active_registrant_once(bot: BotHarness) -> None:
    for user in USERS[:6]:  # capacity 4: four confirmed, two waitlisted
        _register(bot, user)
    bot.say("キャンセル E2", user=USERS[5])
    _round(bot)  # the bot's first look at the events
    _edit(bot, status="cancelled")
    done = _round(bot)
    assert done.changes == 1 and done.sent == 5
    for user in USERS[:5]:
        [(messages, key)] = _pushes_to(bot, user)
        assert "【中止のお知らせ】" in messages[0]["text"]
        assert "Excelの調査票をアプリにするハンズオン" in messages[0]["text"]
        assert len(key) == 36  # a UUID as X-Line-Retry-Key
    assert _pushes_to(bot, USERS[5]) == []  # had cancelled already
    assert _round(bot).sent == 0  # a second round sends nothing
    rows = [r for r in _deliveries(bot) if r["kind"] == "event-cancelled"]
    assert sorted(r["user_id"] for r in rows) == USERS[:5]
    assert {r["summary"] for r in rows} == {"中止のお知らせ"}


def test_a_moved_event_says_what_changed_from_what_to_what(bot: BotHarness) -> None:
    _register(bot, USERS[0])
    _round(bot)
    _edit(bot, start="15:00〜17:00", venue="市民会館 2階 会議室")
    _round(bot)
    [(messages, _)] = _pushes_to(bot, USERS[0])
    text = messages[0]["text"]
    assert text.startswith("【変更のお知らせ】")
    assert "14:00〜16:00 → 2026年12月29日(火) 15:00〜17:00" in text
    assert "会場: 市役所本庁舎 5階 研修室 → 市民会館 2階 会議室" in text
    assert "詳細 E2" in text
    assert "【変更あり(日時・会場)】" in bot.say("詳細 E2", user=USERS[0])[0]
    assert "【変更あり(日時・会場)】" in bot.say("登録確認", user=USERS[0])[0]


def test_changing_the_date_twice_sends_two_notices(bot: BotHarness) -> None:
    _register(bot, USERS[0])
    _round(bot)
    _edit(bot, date="2027-01-12")
    _round(bot)
    _edit(bot, date="2026-12-29")
    _round(bot)
    texts = [msgs[0]["text"] for msgs, _ in _pushes_to(bot, USERS[0])]
    assert len(texts) == 2
    assert "→ 2027年1月12日(火)" in texts[0] and "→ 2026年12月29日(火)" in texts[1]
    keys = [key for _, key in _pushes_to(bot, USERS[0])]
    assert len(set(keys)) == 2


def test_other_edits_send_nothing(bot: BotHarness) -> None:
    _register(bot, USERS[0])
    _round(bot)
    _edit(bot, capacity="10")
    assert _round(bot).changes == 0
    assert _pushes_to(bot, USERS[0]) == []


def test_a_change_to_a_past_event_is_not_news(bot: BotHarness) -> None:
    _register(bot, USERS[0])
    _round(bot)
    bot.clock.now = dt.datetime(2027, 1, 5, 10, 0, tzinfo=JST)
    _edit(bot, venue="別の会場")
    assert _round(bot).changes == 1
    texts = [msgs[0]["text"] for msgs, _ in _pushes_to(bot, USERS[0])]
    assert texts and not [t for t in texts if "変更" in t]  # only the after-event message


def test_status_and_details_show_a_cancelled_event(bot: BotHarness) -> None:
    _register(bot, USERS[0])
    _round(bot)
    _edit(bot, status="cancelled")
    _round(bot)
    status = bot.say("登録確認", user=USERS[0])[0]
    assert "【中止】" in status and "イベント中止" in status and "参加確定" not in status
    assert bot.say("詳細 E2", user=USERS[0])[0].startswith("【中止】")


def test_details_show_a_closed_event(bot: BotHarness) -> None:
    _edit(bot, status="closed")
    bot.store.reload()
    assert bot.say("詳細 E2")[0].startswith("【受付終了】")
    bot.clock.now = dt.datetime(2026, 12, 28, 10, 0, tzinfo=JST)  # past the deadline
    _edit(bot, status="open")
    bot.store.reload()
    assert bot.say("詳細 E2")[0].startswith("【受付終了】")


def test_a_failed_push_is_sent_by_the_next_round(bot: BotHarness, monkeypatch) -> None:
    _register(bot, USERS[0])
    _round(bot)
    _edit(bot, status="cancelled")
    tried: list[str] = []
    monkeypatch.setattr(bot.line, "push", lambda to, msgs, key: tried.append(key) and False)
    assert _round(bot).sent == 0
    monkeypatch.undo()
    assert _round(bot).sent == 0  # a refused chunk waits before the next try
    state = bot.app.extensions["seminar_bot"].services.state
    state.clock = lambda: time.time() + bot.settings.scheduler_seconds  # the next round, a minute later
    assert _round(bot).sent == 1
    [(_, key)] = _pushes_to(bot, USERS[0])
    assert tried and set(tried) == {key}  # every retry used the same X-Line-Retry-Key


def test_a_cancelled_event_offers_no_registration_and_no_cancellation(bot: BotHarness) -> None:
    _register(bot, USERS[0])
    _edit(bot, status="cancelled")
    bot.store.reload()
    bot.say("詳細 E2", user=USERS[0])
    assert _quick_labels(bot) == ["予定"]
    bot.say("登録確認", user=USERS[0])
    assert _quick_labels(bot) == []
    assert bot.say("参加登録 E2", user=USERS[0])[0] == "「Excelの調査票をアプリにするハンズオン」は中止になりました。"


def test_a_closed_event_is_refused_before_the_privacy_notice(bot: BotHarness) -> None:
    _edit(bot, status="closed")
    bot.store.reload()
    newcomer = "U" + "e" * 32
    assert bot.say("参加登録 E2", user=newcomer)[0].endswith("の受付は終了しました。")
    assert bot.say("参加登録", user=newcomer) == ["現在、受付中のイベントはありません。"]
