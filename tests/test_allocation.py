"""Issue 15, the allocation columns of `events`: how seats are given (first come or a draw), when
the draw is, how long a promoted person has to confirm, when confirmed people are asked again.
Bad cells are skipped and reported by `check`; workbooks without the columns read as before."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from sheets.dates import Unreadable, parse_duration
from sheets.sample import create_sample_workbook
from sheets.schema import COLUMNS, OPTIONAL_COLUMNS, parse_workbook
from tests.conftest import ROOT

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
