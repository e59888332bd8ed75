"""Issue 15, the allocation columns of `events`: how seats are given (first come or a draw), when
the draw is, how long a promoted person has to confirm, when confirmed people are asked again.
Bad cells are skipped and reported by `check`; workbooks without the columns read as before."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from sheets.dates import Unreadable, parse_duration
from sheets.sample import create_sample_workbook
from sheets.schema import COLUMNS, OPTIONAL_COLUMNS, parse_workbook
from tests.conftest import ADMIN, HANDLER_ERRORS, ROOT, TODAY, BotHarness, build_harness

EVENTS = list(COLUMNS["events"])


def _event(**cells: object) -> list[object]:
    row: dict[str, object] = {"id": "E5", "title": "人気の研修", "date": "2027-01-20",
                              "capacity": 10, **cells}
    return [row.get(column, "") for column in EVENTS]


@pytest.mark.parametrize(("typed", "seconds"), [
    ("24h", 86400), ("2d", 172800), ("30m", 1800), ("24時間", 86400), ("2日", 172800),
    ("30分", 1800), ("１日１２時間", 129600), ("3d前", 259200), ("3日前", 259200), ("90 min", 5400),
])
def test_durations_as_organizers_type_them(typed: str, seconds: int) -> None:
    assert parse_duration(typed) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("typed", ["24", "h", "0h", "2週間", "二日", "2d3", "-2d", "明日"])
def test_what_is_not_a_duration_says_so_with_examples(typed: str) -> None:
    with pytest.raises(Unreadable, match=f"「{typed}」は期間として読めません \\(例: 24h"):
        parse_duration(typed)


@pytest.mark.parametrize(("allocation", "lottery_at", "drawn_at"), [
    ("lottery", "2027/1/10 12:00", dt.datetime(2027, 1, 10, 12, 0)),
    ("抽選", "令和9年1月10日 12時", dt.datetime(2027, 1, 10, 12, 0)),
    ("LOTTERY", "2027-01-10", dt.datetime(2027, 1, 10, 9, 0)),  # a date alone: 9:00
])
def test_a_lottery_event_reads_with_its_draw_time(allocation: str, lottery_at: str,
                                                  drawn_at: dt.datetime) -> None:
    org = parse_workbook({"events": [EVENTS, _event(allocation=allocation, lottery_at=lottery_at,
                                                    confirm_within="24時間", reconfirm="3d")]})
    assert [p for p in org.problems if p.sheet == "events"] == []
    (event,) = org.events
    assert (event.allocation, event.lottery_at) == ("lottery", drawn_at)
    assert (event.confirm_within, event.reconfirm) == (dt.timedelta(hours=24), dt.timedelta(days=3))


def test_blank_columns_keep_todays_behaviour() -> None:
    (event,) = parse_workbook({"events": [EVENTS, _event()]}).events
    assert (event.allocation, event.lottery_at, event.confirm_within, event.reconfirm) == (
        "first_come", None, None, None)
    (event,) = parse_workbook({"events": [EVENTS, _event(allocation="先着順")]}).events
    assert event.allocation == "first_come"


def test_a_workbook_without_the_new_columns_has_no_problem() -> None:
    old = [c for c in EVENTS if c not in OPTIONAL_COLUMNS["events"]]
    row = dict(zip(EVENTS, _event(), strict=True))
    org = parse_workbook({"events": [old, [row[c] for c in old]]})
    assert [p for p in org.problems if p.sheet == "events"] == []
    assert org.events[0].allocation == "first_come"


def test_a_misspelt_column_is_pointed_out() -> None:
    header = [("lotery_at" if c == "lottery_at" else c) for c in EVENTS]
    problems = parse_workbook({"events": [header, _event()]}).problems
    assert any(p.column == "lotery_at" and "'lottery_at' の誤りでは" in p.message for p in problems)


@pytest.mark.parametrize(("cells", "column", "why"), [
    ({"allocation": "lottery"}, "lottery_at", "抽選のイベントには抽選の日時が要ります"),
    ({"allocation": "lottery", "lottery_at": "2027/1/20 9:00"}, "lottery_at",
     "開催日より前にしてください"),
    ({"allocation": "lottery", "lottery_at": "来週"}, "lottery_at", "日付として読めません"),
    ({"allocation": "くじ"}, "allocation", "「くじ」は first_come / lottery のいずれか"),
    ({"confirm_within": "1日半"}, "confirm_within", "「1日半」は期間として読めません"),
    ({"reconfirm": "0d"}, "reconfirm", "「0d」は期間として読めません"),
])
def test_a_bad_allocation_cell_skips_the_row_with_a_reason(cells: dict[str, str], column: str,
                                                            why: str) -> None:
    org = parse_workbook({"events": [EVENTS, _event(**cells)]})
    found = [p for p in org.problems if p.sheet == "events"]
    assert [(p.row, p.column) for p in found] == [(2, column)] and why in found[0].message
    assert org.events == []


def test_check_reports_a_lottery_without_its_draw_time(tmp_path: Path) -> None:
    book = tmp_path / "seminar.xlsx"
    create_sample_workbook(book)
    wb = openpyxl.load_workbook(book)
    ws = wb["events"]
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("allocation") + 1, value="抽選")
    wb.save(book)
    env = {**os.environ, "WORKBOOK_PATH": str(book), "DATA_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-m", "linebot_app", "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "events!lottery_at 行2: 抽選のイベントには抽選の日時が要ります" in done.stdout


# ---- applications, before the draw ------------------------------------------------------------
U1, U2 = "U" + "1" * 32, "U" + "2" * 32


@pytest.fixture(params=["sqlite", "firestore"])
def lottery_bot(request, tmp_path: Path) -> Iterator[BotHarness]:
    """The sample bot, its E2 a lottery drawn on 2026-12-20 12:00 (the clock says 12-01)."""
    env = request.getfixturevalue("firestore_env") if request.param == "firestore" else {}
    book = tmp_path / "seminar.xlsx"
    create_sample_workbook(book, TODAY)
    wb = openpyxl.load_workbook(book)
    ws = wb["events"]
    header = [c.value for c in ws[1]]
    for cells in ws.iter_rows(min_row=2):
        if cells[0].value == "E2":
            cells[header.index("allocation")].value = "抽選"
            cells[header.index("lottery_at")].value = "2026/12/20 12:00"
    wb.save(book)
    harness = build_harness(tmp_path, **env)
    for user in (U1, U2):
        harness.consent(user)
    yield harness
    found, HANDLER_ERRORS[:] = list(HANDLER_ERRORS), []
    assert not found, f"handler exception(s): {[repr(err) for err, _ in found]}"


def _rows(bot: BotHarness) -> dict[str, str]:
    return {r.user_id: r.status for r in bot.store.registrations() if r.event_id == "E2"}


def test_before_the_draw_a_registration_is_an_application(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    reply = bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert "抽選に申し込みました。結果は 12月20日 12:00 にお知らせします。" in reply
    assert _rows(bot) == {U1: "applied"}
    assert "抽選待ち" in bot.say("登録確認", user=U1)[0]
    assert "すでに登録済みです (抽選待ち)" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert _rows(bot) == {U1: "applied"}  # nothing added


def test_applications_take_no_seat_and_cancelling_one_withdraws_it(lottery_bot: BotHarness
                                                                    ) -> None:
    bot = lottery_bot
    for user in (U1, U2):
        bot.say("参加登録 E2 参加 初心者", user=user)
    assert bot.say("キャンセル E2", user=U1)[0] == \
        "「Excelの調査票をアプリにするハンズオン」の抽選の申し込みを取り消しました。"
    assert _rows(bot) == {U1: "cancelled", U2: "applied"}
    assert not bot.line.pushes  # nobody was promoted: an application holds no seat
    assert "現在、登録はありません" in bot.say("登録確認", user=U1)[0]
    bot.store.drain(seconds=10)
    sheet = {r.user_id: r.status for r in bot.store.reload().registrations if r.event_id == "E2"}
    assert sheet == {U1: "cancelled", U2: "applied"}


def test_after_the_draw_time_registration_is_first_come_again(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    bot.clock.advance(days=19, hours=3)  # 2026-12-20 13:00
    assert "参加確定です" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert _rows(bot) == {U1: "confirmed"}


def test_one_application_per_person_when_two_arrive_at_once(lottery_bot: BotHarness) -> None:
    seats = lottery_bot.store.seats
    row = {"id": "R-a", "created_at": "2026-12-01T10:00:00.000+09:00", "event_id": "E2",
           "user_id": U1, "display_name": "", "role": "participant", "level": "beginner",
           "status": "", "room": "", "updated_at": "2026-12-01T10:00:00.000+09:00"}
    first, second = seats.apply(row), seats.apply({**row, "id": "R-b"})
    assert (first.new, first.reg.status) == (True, "applied")
    assert (second.new, second.reg.id) == (False, "R-a")
    assert [r.id for r in lottery_bot.store.registrations() if r.user_id == U1] == ["R-a"]


def test_the_organizers_count_shows_the_applications(lottery_bot: BotHarness) -> None:
    for user in (U1, U2):
        lottery_bot.say("参加登録 E2 参加 初心者", user=user)
    lines = lottery_bot.say("集計 E2", user=ADMIN)[0].splitlines()
    assert "参加: 抽選待ち 2 / 確定 0 / キャンセル待ち 0 / キャンセル 0" in lines
