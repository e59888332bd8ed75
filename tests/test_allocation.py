"""Issue 15, the allocation columns of `events`: how seats are given (first come or a draw), when
the draw is, how long a promoted person has to confirm, when confirmed people are asked again.
Bad cells are skipped and reported by `check`; workbooks without the columns read as before."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from domain.dates import Unreadable, parse_duration
from domain.schema import COLUMNS, OPTIONAL_COLUMNS, parse_workbook
from domain.seats import APPLICATIONS, DRAWING, FIRST_COME, phase
from storage.sheets.sample import create_sample_workbook
from tests.conftest import (
    ADMIN,
    HANDLER_ERRORS,
    JST,
    ROOT,
    TODAY,
    BotHarness,
    build_harness,
    eventually,
)

EVENTS = list(COLUMNS["events"])
log = logging.getLogger(__name__)


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


def _set_cells(book: Path, sheet: str, row_id: str, **cells: object) -> None:
    """What an organizer does in Excel: cells of the row with this id changed, and saved."""
    wb = openpyxl.load_workbook(book)
    ws = wb[sheet]
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2):
        if row[0].value == row_id:
            for column, value in cells.items():
                row[header.index(column)].value = value
    wb.save(book)


def _lottery_harness(tmp_path: Path, **env: str) -> BotHarness:
    """The sample bot, its E2 a lottery for 10 seats drawn on 2026-12-20 12:00 (the clock says
    12-01), a promoted person confirming within 24 hours, everyone asked again 3 days before."""
    book = tmp_path / "seminar.xlsx"
    create_sample_workbook(book, TODAY)
    _set_cells(book, "events", "E2", allocation="抽選", lottery_at="2026/12/20 12:00",
               capacity=10, confirm_within="24時間", reconfirm="3日前")  # E2: 2026-12-29 14:00
    harness = build_harness(tmp_path, **env)
    for user in (U1, U2):
        harness.consent(user)
    return harness


@pytest.fixture(params=["sqlite", "firestore"])
def lottery_bot(request, tmp_path: Path) -> Iterator[BotHarness]:
    """_lottery_harness on each state backend."""
    env = request.getfixturevalue("firestore_env") if request.param == "firestore" else {}
    yield _lottery_harness(tmp_path, **env)
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
    from linebot_app.ops import scheduler

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
    from domain.seats import queue
    assert [r.id for r in queue(regs.values(), "E2", "participant")] == list(draw.order[10:])
    sent = len(bot.line.pushes) + len(bot.line.multicasts)
    assert _tick(bot).draws == 0 and len(bot.line.pushes) + len(bot.line.multicasts) == sent
    assert "参加: 抽選待ち 0 / 確定 10 / キャンセル待ち 30" in bot.say("集計 E2", user=ADMIN)[0]
    bot.store.drain(seconds=10)
    (row,) = bot.store.reload().bot_rows["lottery"]
    assert (row["event_id"], row["role"], row["applicants"], row["winners"]) == (
        "E2", "participant", "40", "10")
    assert row["order"].split() == list(draw.order) and row["notified_at"]


def test_a_draw_with_a_seat_already_taken_records_only_the_seats_it_gave(lottery_bot: BotHarness
                                                                        ) -> None:
    bot = lottery_bot
    bot.registered(U1, "E2")  # an organizer gave one of the 10 seats before the draw
    ids = _apply(bot, 12)
    bot.clock.advance(**DRAW_AT)
    first = bot.say("抽選 E2", user=ADMIN)[0]
    regs = _regs(bot)
    assert [regs[i].status for i in ids].count("confirmed") == 9
    assert "参加: 申込 12 / 当選 9 / キャンセル待ち 3" in first
    assert bot.store.seats.drawn("E2", "participant").winners == 9
    bot.store.drain(seconds=10)
    (row,) = bot.store.reload().bot_rows["lottery"]
    assert (row["applicants"], row["winners"]) == ("12", "9")


def test_after_the_draw_new_registrations_are_first_come(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    _apply(bot, 8)
    bot.clock.advance(**DRAW_AT)
    _tick(bot)
    assert "参加確定です" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]  # seat 9 of 10
    assert "参加確定です" in bot.say("参加登録 E2 参加 初心者", user=U2)[0]
    bot.consent(U3)
    assert "キャンセル待ち(1番目)" in bot.say("参加登録 E2 参加 初心者", user=U3)[0]


def test_the_three_phases_meet_at_the_draw_time_and_the_start() -> None:
    (event,) = parse_workbook({"events": [EVENTS, _event(allocation="抽選",
                                                         lottery_at="2026/12/20 12:00")]}).events
    draw_at, tick = event.lottery_at, dt.timedelta(microseconds=1)
    assert phase(event, draw_at - tick) == APPLICATIONS
    assert phase(event, draw_at) == DRAWING
    assert phase(event, draw_at, waiting=False) == FIRST_COME  # drawn: first come again
    assert phase(event, event.starts_at - tick) == DRAWING
    assert phase(event, event.starts_at) == FIRST_COME
    assert phase(dataclasses.replace(event, status="cancelled"), draw_at) == FIRST_COME
    assert phase(dataclasses.replace(event, allocation="first_come"), draw_at - tick) == FIRST_COME


def test_at_the_draw_time_to_the_second_registration_waits_for_the_draw(lottery_bot: BotHarness
                                                                          ) -> None:
    bot = lottery_bot
    _apply(bot, 3)
    bot.clock.now = dt.datetime(2026, 12, 20, 11, 59, 59, tzinfo=JST)
    assert "抽選に申し込みました" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert _tick(bot).draws == 0
    bot.clock.now = dt.datetime(2026, 12, 20, 12, 0, tzinfo=JST)
    assert "ただいま抽選中です" in bot.say("参加登録 E2 参加 初心者", user=U2)[0]
    assert _tick(bot).draws == 1  # the scheduler draws at the same instant registration stops
    assert {_regs(bot)[i].status for i in _regs(bot)} == {"confirmed"}


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

    from domain.seats import draw_order

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

    from domain.seats import draw_order

    orders = Counter(draw_order("abcd", random.Random(seed)) for seed in range(24_000))
    assert set(orders) == set(itertools.permutations("abcd"))
    assert sum((n - 1000) ** 2 / 1000 for n in orders.values()) < 49.73  # 23 degrees

    ids = [f"R{n:02d}" for n in range(40)]
    wins = Counter(r for seed in range(4_000) for r in draw_order(ids, random.Random(seed))[:10])
    assert sum((wins[r] - 1000) ** 2 / 1000 for r in ids) < 72.06  # 39 degrees
    firsts = Counter(draw_order(ids, random.Random(seed))[0] for seed in range(4_000))
    assert sum((firsts[r] - 100) ** 2 / 100 for r in ids) < 72.06


# ---- offers: a freed seat held for the first person waiting -----------------------------------
def _drawn(bot: BotHarness, count: int = 14) -> tuple[list[Any], list[Any]]:
    """count applications drawn for E2's 10 seats: (winners, the waitlist in order)."""
    from domain.seats import queue

    _apply(bot, count)
    bot.clock.advance(**DRAW_AT)
    _tick(bot)
    regs = _regs(bot)
    return ([r for r in regs.values() if r.status == "confirmed"],
            queue(regs.values(), "E2", "participant"))


def _again(bot: BotHarness) -> str:
    """The command behind the last reply's 「もう一度申し込む」 button."""
    items = bot.line.replies[-1][1][-1]["quickReply"]["items"]
    (found,) = [i["action"]["data"] for i in items if i["action"]["label"] == "もう一度申し込む"]
    return found


def _texts_to(bot: BotHarness, user: str) -> list[str]:
    return bot.line.received(user)


def test_an_offer_expires_and_moves_on_and_the_next_accepts(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    winners, line = _drawn(bot)
    first, second = line[0], line[1]
    bot.consent(winners[0].user_id)
    assert "登録をキャンセルしました" in bot.say("キャンセル E2", user=winners[0].user_id)[0]
    offer = _texts_to(bot, first.user_id)[-1]
    assert "繰り上げで参加できます。\n12月21日 12:01 までに「参加する」を押してください" in offer
    assert _regs(bot)[first.id].status == "offered"
    assert "繰り上げ(12月21日 12:01までに「参加する」で確定)" in bot.say("登録確認",
                                                                  user=first.user_id)[0]
    bot.clock.advance(hours=23, minutes=59)
    assert _tick(bot).expired == 0  # a minute before the deadline the seat is still held
    bot.clock.advance(minutes=1)
    assert _tick(bot).expired == 1
    assert _regs(bot)[first.id].status == "expired"
    assert "お返事がなかったため、次の方にお譲りしました" in _texts_to(bot, first.user_id)[-1]
    bot.consent(first.user_id)
    late = bot.say("参加する E2", user=first.user_id)[0]  # after the round ended the offer
    assert "期限を過ぎたため次の方にお譲りしました" in late and "「もう一度申し込む」" in late
    assert _again(bot) == "参加登録 E2"
    assert [r.status for r in _regs(bot).values() if r.user_id == first.user_id] == ["expired"]
    assert "12月22日 12:01 までに「参加する」" in _texts_to(bot, second.user_id)[-1]
    bot.consent(second.user_id)
    assert "参加が確定しました" in bot.say("参加する E2", user=second.user_id)[0]
    assert _regs(bot)[second.id].status == "confirmed"
    assert _tick(bot).expired == 0
    lines = bot.say("集計 E2", user=ADMIN)[0].splitlines()
    assert "参加: 抽選待ち 0 / 確定 10 / キャンセル待ち 2 / キャンセル 1 / 繰り上げ回答待ち 0 / " \
        "辞退 0 / 期限切れ 1" in lines
    bot.store.drain(seconds=10)
    sheet = {r.id: r.status for r in bot.store.reload().registrations}
    assert (sheet[first.id], sheet[second.id], sheet[winners[0].id]) == (
        "expired", "confirmed", "cancelled")


def test_an_answer_after_the_deadline_is_refused_and_the_seat_moves_on(lottery_bot: BotHarness
                                                                        ) -> None:
    bot = lottery_bot
    winners, line = _drawn(bot)
    bot.consent(winners[0].user_id)
    bot.say("キャンセル E2", user=winners[0].user_id)
    bot.clock.advance(hours=24, minutes=1)  # the scheduler has not run yet
    bot.consent(line[0].user_id)
    reply = bot.say("参加する E2", user=line[0].user_id)[0]
    assert "期限(12月21日 12:01)を過ぎたため、次の方に順番が移りました" in reply
    assert _regs(bot)[line[0].id].status == "expired"
    assert not any("お返事がなかった" in t for t in _texts_to(bot, line[0].user_id))  # once
    assert _regs(bot)[line[1].id].status == "offered"


def test_a_declined_offer_goes_to_the_next_person(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    winners, line = _drawn(bot)
    bot.consent(winners[0].user_id)
    bot.say("キャンセル E2", user=winners[0].user_id)
    bot.consent(line[0].user_id)
    declined = bot.say("辞退する E2", user=line[0].user_id)[0]
    assert "繰り上げを辞退しました" in declined and "「もう一度申し込む」" in declined
    assert _again(bot) == "参加登録 E2" and "E2" not in declined  # the id only in the button
    assert bot.say("辞退する E2", user=line[0].user_id) == [  # a second tap changes nothing
        "辞退できる繰り上げのご案内はありません。登録の取り消しは「キャンセル」です。"]
    assert (_regs(bot)[line[0].id].status, _regs(bot)[line[1].id].status) == (
        "declined", "offered")


def test_capacity_holds_while_offers_are_pending(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    winners, line = _drawn(bot)
    for winner in winners[:3]:
        bot.consent(winner.user_id)
        bot.say("キャンセル E2", user=winner.user_id)
    assert [_regs(bot)[r.id].status for r in line[:4]] == ["offered"] * 3 + ["waitlisted"]
    for user in (U1, U2, U3):  # newcomers while three seats are held: nobody takes one
        bot.consent(user)
        assert "キャンセル待ち" in bot.say("参加登録 E2 参加 初心者", user=user)[0]
    seated = [r for r in _regs(bot).values() if r.seated]
    assert len(seated) == 10
    bot.clock.advance(hours=25)
    _tick(bot)  # three offers expire, three more are made: still 10 seats held, never 11
    statuses = [r.status for r in _regs(bot).values()]
    assert (statuses.count("confirmed"), statuses.count("offered"), statuses.count("expired")
            ) == (7, 3, 3)


def test_without_confirm_within_promotion_is_immediate(bot: BotHarness) -> None:
    for n in (1, 2, 3, 4, 5):
        bot.consent(_user(n))
        bot.say("参加登録 E2 参加 初心者", user=_user(n))  # E2: 4 seats, first come
    bot.say("キャンセル E2", user=_user(1))
    assert "参加が確定しました(キャンセル待ちから繰り上げ)" in bot.line.received(_user(5))[-1]
    assert {r.user_id: r.status for r in bot.store.registrations()}[_user(5)] == "confirmed"


# ---- reconfirmation ---------------------------------------------------------------------------
def test_confirmed_people_are_asked_again_and_the_answers_are_counted(lottery_bot: BotHarness
                                                                       ) -> None:
    bot = lottery_bot
    winners, line = _drawn(bot)
    asked = "【参加確認】Excelの調査票をアプリにするハンズオン"
    bot.clock.advance(days=5, hours=23)  # 12-26 11:01: three days before is 12-26 14:00
    _tick(bot)
    assert not any(asked in t for t in bot.line.received(winners[0].user_id))
    bot.clock.advance(hours=3)
    _tick(bot)
    for winner in winners:
        assert sum(asked in t for t in bot.line.received(winner.user_id)) == 1
    assert not any(asked in t for r in line for t in bot.line.received(r.user_id))  # waiting
    first, second = winners[0].user_id, winners[1].user_id
    for user in (first, second):
        bot.consent(user)
    assert "ご参加と承りました" in bot.say("参加する E2", user=first)[0]
    assert "登録をキャンセルしました" in bot.say("キャンセル E2", user=second)[0]
    _tick(bot)
    assert sum(asked in t for t in bot.line.received(first)) == 1  # asked once only
    lines = bot.say("集計 E2", user=ADMIN)[0].splitlines()
    assert "参加確認: 参加すると回答 1 / 未回答 8" in lines  # (the freed seat: offered)
    offered = next(r for r in _regs(bot).values() if r.status == "offered")
    bot.consent(offered.user_id)
    bot.say("参加する E2", user=offered.user_id)  # taking a seat this close is an answer too
    assert "参加確認: 参加すると回答 2 / 未回答 8" in bot.say("集計 E2", user=ADMIN)[0]
    listed = bot.say("参加者 E2", user=ADMIN)[0]
    assert listed.count("参加確認済み") == 2
    bot.store.drain(seconds=10)
    sheet = {r.user_id: r for r in bot.store.reload().registrations}
    assert sheet[first].reconfirmed and not sheet[winners[2].user_id].reconfirmed


# ---- once: two schedulers at the same time, and a kill -9 in the middle of a draw --------------
SCHEDULER = """
import datetime as dt, json, sys
from pathlib import Path
from tests.conftest import JST, Clock, RecordingLine, make_settings, make_store
from linebot_app import create_app
from linebot_app.features import lottery
settings = make_settings(Path(sys.argv[1]), **json.loads(sys.argv[2]))
store = make_store(settings)
app = create_app(settings, store=store, line=RecordingLine(),
                 clock=Clock(dt.datetime(2026, 12, 20, 12, 1, tzinfo=JST)))
services = app.extensions["seminar_bot"].services
event = store.workbook().event("E2")
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps([list(d.order) for d in lottery.run(services, event)]), flush=True)
"""


def _scheduler(tmp: Path, bot: BotHarness) -> subprocess.Popen[str]:
    """Another instance's scheduler round for E2, in a process of its own, over the same
    workbook and DATA_DIR (or Firestore namespace); it draws when sent a line."""
    child = subprocess.Popen(
        [sys.executable, "-c", SCHEDULER, str(tmp), json.dumps(_instance_env(bot))], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


@pytest.fixture
def schedulers(lottery_bot: BotHarness, tmp_path: Path) -> Iterator[Any]:
    """Starts _scheduler processes; each is stopped by its id at the end, whatever happened."""
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        started.append(_scheduler(tmp_path, lottery_bot))
        return started[-1]

    yield start
    for child in started:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()


def _instance_env(bot: BotHarness) -> dict[str, str]:
    if bot.settings.state_backend != "firestore":
        return {}
    return {k: os.environ[k] for k in ("FIRESTORE_EMULATOR_HOST",)} | {
        "STATE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "demo-seminar",
        "FIRESTORE_NAMESPACE": bot.settings.firestore.namespace}


def _all_told_once(bot: BotHarness, users: list[str]) -> None:
    bot.work()
    results = _results(bot)
    assert sorted(results) == sorted(users) and all(len(t) == 1 for t in results.values())


def test_two_schedulers_at_once_draw_once(lottery_bot: BotHarness, schedulers: Any) -> None:
    bot = lottery_bot
    ids = _apply(bot, 40)
    children = [schedulers() for _ in range(2)]
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    orders = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    assert [child.returncode for child in children] == [0, 0]
    assert orders[0] == orders[1] and sorted(orders[0][0]) == sorted(ids)  # one draw, one order
    regs = eventually(lambda: _settled(bot, 40))
    winners = [r for r in regs if r.status == "confirmed"]
    assert len(winners) == 10 and {r.id for r in winners} == set(orders[0][0][:10])
    _all_told_once(bot, [_user(n) for n in range(1, 41)])
    bot.store.drain(seconds=10)
    assert [r["order"].split() for r in bot.store.reload().bot_rows["lottery"]] == orders[0]


def _settled(bot: BotHarness, count: int) -> list[Any]:
    regs = [r for r in _regs(bot).values() if r.status in ("confirmed", "waitlisted")]
    return regs if len(regs) == count else []


def test_a_draw_killed_midway_is_finished_once_with_the_same_order(lottery_bot: BotHarness,
                                                                  schedulers: Any) -> None:
    bot = lottery_bot
    ids = _apply(bot, 40)
    child = schedulers()
    child.stdin.write("go\n")
    child.stdin.flush()
    frozen = eventually(lambda: bot.store.seats.drawn("E2", "participant"), timeout=60,
                        every=0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    placed = [r for r in _regs(bot).values() if r.status != "applied"]
    log.info("killed the scheduler with %d of 40 placed", len(placed))
    bot.clock.advance(**DRAW_AT)
    _tick(bot)  # the next round finishes it (on SQLite the draw is one step: whole or none)
    draw = bot.store.seats.drawn("E2", "participant")
    assert draw.order == frozen.order and sorted(draw.order) == sorted(ids)
    regs = _regs(bot)
    assert [regs[i].status for i in draw.order] == ["confirmed"] * 10 + ["waitlisted"] * 30
    _all_told_once(bot, [_user(n) for n in range(1, 41)])
    assert _tick(bot).draws == 0


def test_a_draw_made_but_not_announced_is_announced_by_the_next_round(lottery_bot: BotHarness
                                                                     ) -> None:
    """A scheduler that died between the draw and the pushes: the next round tells everyone
    once, from the same order, and draws nothing new."""
    import random

    bot = lottery_bot
    _apply(bot, 40)
    made = bot.store.seats.draw("E2", "participant", 10, "2026-12-20T12:00:00",
                                "2026-12-20T12:00:30.000+09:00", random.Random(7))
    assert made is not None and not made.notified_at and not bot.line.pushes
    bot.clock.advance(**DRAW_AT)
    _tick(bot)
    assert bot.store.seats.drawn("E2", "participant").order == made.order
    _all_told_once(bot, [_user(n) for n in range(1, 41)])
    assert bot.store.seats.drawn("E2", "participant").notified_at


def _cancel_by_hand(bot: BotHarness, reg_id: str, status: str = "cancelled") -> None:
    """A registration's status changed by hand, once the bot's rows are in the workbook."""
    bot.store.drain(seconds=10)
    _set_cells(bot.settings.workbook_path, "registrations", reg_id, status=status)
    bot.store.reload()


def test_a_seat_an_organizer_frees_by_hand_is_offered_to_the_first_waiting(
        lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    winners, line = _drawn(bot)
    _cancel_by_hand(bot, winners[0].id)
    eventually(lambda: _regs(bot)[winners[0].id].status == "cancelled")
    assert _tick(bot).filled == 1
    assert _regs(bot)[line[0].id].status == "offered"
    assert "繰り上げで参加できます" in _texts_to(bot, line[0].user_id)[-1]
    assert _tick(bot).filled == 0  # the seat is held: nothing more to give
    told = [t for t in _texts_to(bot, winners[0].user_id) if "運営者により取り消されました" in t]
    assert len(told) == 1  # the person cancelled by hand is told, once


def test_a_person_an_organizer_confirms_by_hand_is_told(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    _, line = _drawn(bot)
    _cancel_by_hand(bot, line[0].id, "confirmed")  # over capacity: the organizer's call
    eventually(lambda: _regs(bot)[line[0].id].status == "confirmed")
    _tick(bot)
    told = [t for t in _texts_to(bot, line[0].user_id) if "運営者による変更" in t]
    assert len(told) == 1 and "参加が確定しました" in told[0]
    assert not any("運営者" in t for r in line[1:] for t in _texts_to(bot, r.user_id))


def test_a_newcomer_does_not_take_a_seat_someone_waits_for(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    winners, line = _drawn(bot)
    _cancel_by_hand(bot, winners[0].id)
    eventually(lambda: _regs(bot)[winners[0].id].status == "cancelled")
    reply = bot.say("参加登録 E2 参加 初心者", user=U1)[0]  # the draw's second, no round yet
    assert "キャンセル待ち(4番目)" in reply
    assert _regs(bot)[line[0].id].status == "offered"
    assert "繰り上げで参加できます" in _texts_to(bot, line[0].user_id)[-1]
    assert sum(r.seated for r in _regs(bot).values()) == 10


def test_an_offer_never_outlasts_the_start_and_nothing_is_offered_once_it_began(
        lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    winners, line = _drawn(bot)
    bot.clock.advance(days=9, hours=-1)  # 12-29 11:01; the seminar starts at 14:00
    for winner in winners[:2]:
        bot.consent(winner.user_id)
    bot.say("キャンセル E2", user=winners[0].user_id)
    assert "12月29日 14:00 までに「参加する」" in _texts_to(bot, line[0].user_id)[-1]
    bot.clock.advance(hours=3)  # 14:01: under way
    assert _tick(bot).expired == 1
    bot.say("キャンセル E2", user=winners[1].user_id)
    statuses = {r.id: r.status for r in _regs(bot).values()}
    assert [statuses[r.id] for r in line] == ["expired", "waitlisted", "waitlisted", "waitlisted"]
    assert not any("繰り上げ" in t for r in line[1:] for t in _texts_to(bot, r.user_id))


def test_an_offer_deadline_is_rounded_up_to_the_minute_shown(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    winners, line = _drawn(bot)
    bot.clock.advance(seconds=30)  # 12:01:30: 24 hours from now is shown as 12:02, not 12:01
    bot.consent(winners[0].user_id)
    bot.say("キャンセル E2", user=winners[0].user_id)
    assert "12月21日 12:02 までに「参加する」" in _texts_to(bot, line[0].user_id)[-1]
    bot.clock.advance(hours=24, seconds=20)  # 12:01:50 the next day: still within it
    assert _tick(bot).expired == 0
    bot.consent(line[0].user_id)
    assert "参加が確定しました" in bot.say("参加する E2", user=line[0].user_id)[0]


def test_the_organizer_can_draw_a_due_lottery_at_once(lottery_bot: BotHarness) -> None:
    bot = lottery_bot
    _apply(bot, 12)
    assert bot.say("抽選 E2", user=U1) == ["権限がありません"]
    assert "抽選は 12月20日 12:00 です。その時刻になると自動で行います" in \
        bot.say("抽選 E2", user=ADMIN)[0]
    assert "は抽選のイベントではありません" in bot.say("抽選 E1", user=ADMIN)[0]
    bot.clock.advance(**DRAW_AT)
    first = bot.say("lottery E2", user=ADMIN)[0]
    assert "参加: 申込 12 / 当選 10 / キャンセル待ち 2 (2026-12-20 12:01 抽選、結果を各申込者に" \
        "お知らせします)" in first
    assert _results(bot) and all(len(t) == 1 for t in _results(bot).values())
    again = bot.say("抽選 E2", user=ADMIN)[0]
    assert "(2026-12-20 12:01 抽選、結果は 2026-12-20 12:01 にお知らせ済み)" in again
    assert bot.store.seats.drawn("E2", "participant").order  # one draw, kept
    assert all(len(t) == 1 for t in _results(bot).values())  # nobody told twice


def test_the_details_say_how_seats_are_given(lottery_bot: BotHarness) -> None:
    text = lottery_bot.say("詳細 E2", user=U1)[0]
    assert "抽選: 2026年12月20日 12:00 (それまでの申し込みから抽選します)" in text
    assert "繰り上げ: ご案内から24時間以内に「参加する」で確定" in text
    assert "参加の再確認: 開始の3日前 (12月26日 14:00) から、参加確定の方にお尋ねします" in text


@pytest.mark.parametrize("asked", ["抽選の結果はいつわかりますか", "抽選はいつですか", "当選したか知りたい"])
def test_a_question_about_the_draw_in_own_words_is_answered(lottery_bot: BotHarness,
                                                            asked: str) -> None:
    text = lottery_bot.say(asked, user=U1)[0]
    assert "抽選は 12月20日 12:00 です" in text and "「登録確認」" in text


def test_a_draw_on_google_sheets_is_recorded_in_its_lottery_sheet(emu: Any, tmp_path: Path
                                                                  ) -> None:
    from tests.conftest import google_env

    bot = _lottery_harness(tmp_path, **google_env(emu))
    ids = _apply(bot, 40)
    bot.clock.advance(**DRAW_AT)
    assert _tick(bot).draws == 1
    assert bot.store.drain(seconds=30)
    (row,) = emu.rows("lottery")
    draw = bot.store.seats.drawn("E2", "participant")
    assert str(row["order"]).split() == list(draw.order) and sorted(draw.order) == sorted(ids)
    sheet = {r["id"]: r["status"] for r in emu.rows("registrations")}
    assert [sheet[i] for i in draw.order] == ["confirmed"] * 10 + ["waitlisted"] * 30
    assert len(_results(bot)) == 40


@pytest.mark.parametrize("backend", ["sqlite", "firestore"])
def test_a_seat_taken_inside_the_reconfirmation_window_counts_as_an_answer(
        request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    """First come E2 (4 seats, 2026-12-29), asked again 3 days before, no confirm_within: a
    registration inside the window is the answer; someone promoted at once inside it is asked
    in the promotion itself."""
    book = create_sample_workbook(tmp_path / "seminar.xlsx", TODAY)
    _set_cells(book, "events", "E2", reconfirm="3日前")
    env = request.getfixturevalue("firestore_env") if backend == "firestore" else {}
    bot = build_harness(tmp_path, **env)
    bot.clock.advance(days=25, hours=5)  # 12-26 15:00: inside the window
    for n in range(1, 6):
        bot.consent(_user(n))
        bot.say("参加登録 E2 参加 初心者", user=_user(n))
    _tick(bot)
    assert not any("【参加確認】" in t for n in range(1, 6) for t in bot.line.received(_user(n)))
    assert "参加確認: 参加すると回答 4 / 未回答 0" in bot.say("集計 E2", user=ADMIN)[0]
    bot.say("キャンセル E2", user=_user(1))
    promoted = bot.line.received(_user(5))[-1]
    assert "参加が確定しました(キャンセル待ちから繰り上げ)。\n参加できますか" in promoted
    assert "参加確認: 参加すると回答 3 / 未回答 1" in bot.say("集計 E2", user=ADMIN)[0]
    bot.say("参加する E2", user=_user(5))
    assert "参加確認: 参加すると回答 4 / 未回答 0" in bot.say("集計 E2", user=ADMIN)[0]


def test_check_reports_applications_for_an_event_no_longer_a_lottery() -> None:
    regs = list(COLUMNS["registrations"])
    row = dict.fromkeys(regs, "") | {"id": "R1", "event_id": "E5", "user_id": U1,
                                     "status": "applied", "role": "participant"}
    raw = {"events": [EVENTS, _event(allocation="先着")], "registrations": [
        regs, [row[c] for c in regs]]}
    (problem,) = [p for p in parse_workbook(raw).problems if p.sheet == "registrations"]
    assert (problem.row, problem.column) == (2, "status")
    assert "「E5」は抽選ではないため、この申し込みは抽選されません" in problem.message
    raw["events"] = [EVENTS, _event(allocation="抽選", lottery_at="2027/1/10 12:00")]
    assert [p for p in parse_workbook(raw).problems if p.sheet == "registrations"] == []
