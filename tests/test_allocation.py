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
from typing import Any

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
U1, U2, U3 = "U" + "1" * 32, "U" + "2" * 32, "U" + "3" * 32


@pytest.fixture(params=["sqlite", "firestore"])
def lottery_bot(request, tmp_path: Path) -> Iterator[BotHarness]:
    """The sample bot, its E2 a lottery for 10 seats drawn on 2026-12-20 12:00 (the clock says
    12-01), a promoted person confirming within 24 hours, everyone asked again 3 days before."""
    env = request.getfixturevalue("firestore_env") if request.param == "firestore" else {}
    book = tmp_path / "seminar.xlsx"
    create_sample_workbook(book, TODAY)
    wb = openpyxl.load_workbook(book)
    ws = wb["events"]
    header = [c.value for c in ws[1]]
    for cells in ws.iter_rows(min_row=2):
        if cells[0].value == "E2":  # on 2026-12-29 14:00
            for column, value in {"allocation": "抽選", "lottery_at": "2026/12/20 12:00",
                                  "capacity": 10, "confirm_within": "24時間",
                                  "reconfirm": "3日前"}.items():
                cells[header.index(column)].value = value
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
    assert "参加: 抽選待ち 2 / 確定 0 / キャンセル待ち 0 / キャンセル 0 / 繰り上げ回答待ち 0 / "\
        "辞退 0 / 期限切れ 0" in lines


# ---- the draw ---------------------------------------------------------------------------------
DRAW_AT = dict(days=19, hours=2, minutes=1)  # 2026-12-01 10:00 -> 2026-12-20 12:01


def _user(n: int) -> str:
    return f"U{n:032x}"


def _apply(bot: BotHarness, count: int, role: str = "participant") -> list[str]:
    """count applications to E2, made as the webhook makes them; their registration ids."""
    ids = []
    for n in range(1, count + 1):
        stamp = f"2026-12-0{1 + n % 9}T10:{n % 60:02d}:00.000+09:00"
        booked = bot.store.seats.apply({
            "id": f"R-{role[0]}{n:03d}", "created_at": stamp, "event_id": "E2",
            "user_id": _user(n), "display_name": "", "role": role, "level": "beginner",
            "status": "", "room": "", "updated_at": stamp})
        ids.append(booked.reg.id)
    return ids


def _tick(bot: BotHarness) -> Any:
    from linebot_app import scheduler

    return scheduler.tick(bot.app.extensions["seminar_bot"].services)


def _regs(bot: BotHarness) -> dict[str, Any]:
    return {r.id: r for r in bot.store.registrations() if r.event_id == "E2"}


def _results(bot: BotHarness) -> dict[str, list[str]]:
    """Each user's lottery pushes (their texts)."""
    found: dict[str, list[str]] = {}
    for to, messages, _ in bot.line.pushes:
        found.setdefault(to, []).extend(m["text"] for m in messages if "抽選結果" in m["text"])
    for people, messages, _ in bot.line.multicasts:
        for to in people:
            found.setdefault(to, []).extend(m["text"] for m in messages if "抽選結果" in m["text"])
    return {user: texts for user, texts in found.items() if texts}


def test_a_draw_of_40_applicants_for_10_seats(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    ids = _apply(bot, 40)
    assert _tick(bot).draws == 0  # not yet: applications still come in
    bot.clock.advance(**DRAW_AT)
    assert _tick(bot).draws == 1
    regs = _regs(bot)
    statuses = [regs[i].status for i in ids]
    assert (statuses.count("confirmed"), statuses.count("waitlisted")) == (10, 30)
    results = _results(bot)
    assert sorted(results) == sorted(_user(n) for n in range(1, 41))  # 40 pushes, one each
    assert all(len(texts) == 1 for texts in results.values())
    won = {r.user_id for r in regs.values() if r.status == "confirmed"}
    assert all("当選しました" in results[u][0] for u in won)
    places = sorted(int(t.split("キャンセル待ち(")[1].split("番目")[0])
                    for u, (t,) in results.items() if u not in won)
    assert places == list(range(1, 31))
    # the record: the drawn order, whose first 10 won and the rest wait in that order
    draw = bot.store.seats.drawn("E2", "participant")
    assert sorted(draw.order) == sorted(ids) and draw.winners == 10
    assert {regs[i].status for i in draw.order[:10]} == {"confirmed"}
    from sheets.seats import queue
    assert [r.id for r in queue(regs.values(), "E2", "participant")] == list(draw.order[10:])
    sent = len(bot.line.pushes) + len(bot.line.multicasts)
    assert _tick(bot).draws == 0 and len(bot.line.pushes) + len(bot.line.multicasts) == sent
    assert "参加: 抽選待ち 0 / 確定 10 / キャンセル待ち 30" in bot.say("集計 E2", user=ADMIN)[0]
    bot.store.drain(seconds=10)
    (row,) = bot.store.reload().bot_rows["lottery"]
    assert (row["event_id"], row["role"], row["applicants"], row["winners"]) == (
        "E2", "participant", "40", "10")
    assert row["order"].split() == list(draw.order) and row["notified_at"]


def test_after_the_draw_new_registrations_are_first_come(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    _apply(bot, 8)
    bot.clock.advance(**DRAW_AT)
    _tick(bot)
    assert "参加確定です" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]  # seat 9 of 10
    assert "参加確定です" in bot.say("参加登録 E2 参加 初心者", user=U2)[0]
    bot.consent(U3)
    assert "キャンセル待ち(1番目)" in bot.say("参加登録 E2 参加 初心者", user=U3)[0]


def test_between_the_draw_time_and_the_draw_nobody_takes_a_seat_first(lottery_bot: BotHarness
                                                                       ) -> None:
    bot = lottery_bot
    _apply(bot, 8)
    bot.clock.advance(**DRAW_AT)  # the draw is due, but the scheduler has not run yet
    reply = bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert "抽選の受付は 12月20日 12:00 で締め切り、ただいま抽選中です" in reply
    assert U1 not in {r.user_id for r in _regs(bot).values()}  # nothing recorded
    _tick(bot)
    assert "参加確定です" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    statuses = [r.status for r in _regs(bot).values()]
    assert statuses.count("confirmed") == 9 and U1 not in _results(bot)


def test_the_draw_uses_a_cryptographic_source_and_the_order_it_records(lottery_bot: BotHarness
                                                                        ) -> None:
    import random
    import secrets

    from sheets.seats import draw_order

    services = lottery_bot.app.extensions["seminar_bot"].services
    assert isinstance(services.rng, secrets.SystemRandom)
    ids = _apply(lottery_bot, 20)
    services.rng = random.Random(2026)
    lottery_bot.clock.advance(**DRAW_AT)
    _tick(lottery_bot)
    assert lottery_bot.store.seats.drawn("E2", "participant").order == \
        draw_order(ids, random.Random(2026))


def test_every_applicant_has_the_same_chance() -> None:
    """Seeded, so CI sees the same numbers each run: over 24,000 draws of 4 applicants each of
    the 24 orders comes about 1,000 times, and over 4,000 draws of 40 for 10 seats each
    applicant wins about 1,000 times (chi-square below the 0.1% critical value)."""
    import itertools
    import random
    from collections import Counter

    from sheets.seats import draw_order

    orders = Counter(draw_order("abcd", random.Random(seed)) for seed in range(24_000))
    assert set(orders) == set(itertools.permutations("abcd"))
    assert sum((n - 1000) ** 2 / 1000 for n in orders.values()) < 49.73  # 23 degrees

    ids = [f"R{n:02d}" for n in range(40)]
    wins = Counter(r for seed in range(4_000) for r in draw_order(ids, random.Random(seed))[:10])
    assert sum((wins[r] - 1000) ** 2 / 1000 for r in ids) < 72.06  # 39 degrees
    firsts = Counter(draw_order(ids, random.Random(seed))[0] for seed in range(4_000))
    assert sum((firsts[r] - 100) ** 2 / 100 for r in ids) < 72.06
