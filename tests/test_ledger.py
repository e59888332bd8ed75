"""The ledger: rows the bot wrote come back when an old copy of the workbook is saved over the
sheet or a row is deleted; organizers' edits of status and room are kept."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from domain.schema import parse_workbook
from storage.firestore.client import Firestore
from storage.firestore.outbox import FirestoreOutbox
from storage.ledger import MAX_REWRITES, LedgerRow, compare
from storage.local.outbox import SqliteOutbox
from storage.sheets.sample import create_sample_workbook
from storage.sheets.workbook import WorkbookBackend
from storage.store import Store, ledger_repairs
from tests.conftest import ROOT, TODAY, eventually, make_settings


class Clock:
    """Time that moves only when told, shared by the store and its outbox."""

    def __init__(self) -> None:
        self.now = time.time() - 3600  # in the past, so that check (real time) sees it settled

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 5.0) -> None:
        self.now += seconds


@pytest.fixture(params=["sqlite", "firestore"])
def book(request, tmp_path) -> Iterator[tuple[Store, Path, Clock]]:
    """The sample workbook, with the outbox and its ledger in DATA_DIR or in Firestore."""
    path = create_sample_workbook(tmp_path / "seminar.xlsx", TODAY)
    clock = Clock()
    if request.param == "sqlite":
        outbox = SqliteOutbox(tmp_path / "var" / "outbox.sqlite3", clock=clock)
    else:
        env = request.getfixturevalue("firestore_env")
        outbox = FirestoreOutbox(Firestore(make_settings(tmp_path, **env).firestore), clock=clock)
    store = Store(WorkbookBackend(path), outbox, flush_interval=0, clock=clock)
    yield store, path, clock
    store.close()


def _reg(n: int, **kw: Any) -> dict[str, Any]:
    return {"id": f"R{n:04d}", "created_at": "2026-12-01T10:00:00.000+09:00", "event_id": "E2",
            "user_id": f"U{n:032x}", "display_name": f"職員{n}", "role": "participant",
            "level": "", "status": "confirmed", "room": "",
            "updated_at": "2026-12-01T10:00:00.000+09:00", **kw}


def _sheet(path: Path, sheet: str = "registrations") -> list[dict[str, Any]]:
    values = WorkbookBackend(path).read()[sheet]
    return [dict(zip(values[0], r, strict=False)) for r in values[1:] if any(r)]


def _another(store: Store, clock: Clock) -> Any:
    """The same outbox as another process sees it."""
    if isinstance(store.outbox, FirestoreOutbox):
        return FirestoreOutbox(store.outbox.fs, clock=clock)
    return SqliteOutbox(store.outbox.path, clock=clock)


def _write(store: Store, clock: Clock, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        store.add("registrations", row)
    assert store.flush() == len(rows)
    clock.tick()


def _edit(path: Path, row_id: str, **cells: Any) -> None:
    """An organizer's edit of one registration, by hand (None deletes the row)."""
    wb = openpyxl.load_workbook(path)
    ws = wb["registrations"]
    header = [c.value for c in ws[1]]
    for number, row in enumerate(ws.iter_rows(min_row=2), start=2):
        if row[0].value == row_id:
            if not cells:
                ws.delete_rows(number)
            for key, value in cells.items():
                row[header.index(key)].value = value
    wb.save(path)


def test_rows_lost_to_a_stale_save_hold_their_seats_and_are_written_again(book, caplog) -> None:
    store, path, clock = book
    _write(store, clock, [_reg(n) for n in range(1, 4)])
    old_copy = path.read_bytes()  # someone opens the workbook, with no lock file
    _write(store, clock, [_reg(n) for n in range(4, 7)])
    path.write_bytes(old_copy)  # ...and saves it over the bot's rows
    clock.tick()
    with caplog.at_level(logging.WARNING, "storage.store"):
        store.reload()
    assert [r["id"] for r in _sheet(path)] == ["R0001", "R0002", "R0003"]
    assert sorted(r.id for r in store.registrations() if r.active) == [f"R{n:04d}"
                                                                        for n in range(1, 7)]
    assert "registrations: 3 rows the bot wrote are missing, 0 have old or changed values" \
        in caplog.text
    assert store.flush() == 3
    assert sorted(r["id"] for r in _sheet(path)) == [f"R{n:04d}" for n in range(1, 7)]
    clock.tick()
    store.reload()
    assert store.flush() == 0  # repaired once, not again


def test_an_organizer_edit_is_kept_and_an_old_value_is_written_again(book) -> None:
    store, path, clock = book
    _write(store, clock, [_reg(1), _reg(2)])
    old_copy = path.read_bytes()
    store.update("registrations", "R0002",
                 {"status": "cancelled", "updated_at": "2026-12-01T11:00:00.000+09:00"})
    store.flush()
    clock.tick()
    path.write_bytes(old_copy)  # the organizer worked in an old copy...
    _edit(path, "R0001", status="cancelled", room="A")  # ...and cancelled R0001 there
    clock.tick()
    store.reload()
    store.flush()
    clock.tick()
    store.reload()
    rows = {r["id"]: r for r in _sheet(path)}
    assert (rows["R0001"]["status"], rows["R0001"]["room"]) == ("cancelled", "A")  # kept
    assert rows["R0002"]["status"] == "cancelled"  # the bot's newer value, written again
    assert {r.id: r.status for r in store.registrations()} == {"R0001": "cancelled",
                                                               "R0002": "cancelled"}
    assert store.flush() == 0  # the kept edit is not undone at the next read
    clock.tick(700)  # and another instance, later, reads it in the ledger
    assert _another(store, clock).ledger("registrations", 10**9)["R0001"].fields["room"] == "A"


def test_a_repair_leaves_alone_a_row_the_bot_wrote_again_after_the_comparison(book) -> None:
    store, path, clock = book
    _write(store, clock, [_reg(1)])
    old_copy = path.read_bytes()
    store.update("registrations", "R0001",
                 {"status": "cancelled", "updated_at": "2026-12-01T11:00:00.000+09:00"})
    store.flush()
    clock.tick()
    path.write_bytes(old_copy)  # an old copy says confirmed again
    clock.tick()
    raw = WorkbookBackend(path).read()
    (found,) = [r for r in ledger_repairs(store.outbox, raw, parse_workbook(raw), clock())
                if r.sheet == "registrations"]
    assert found.rewrite == [("R0001", {"status": "cancelled",
                                        "updated_at": "2026-12-01T11:00:00.000+09:00"})]
    store.update("registrations", "R0001",  # the bot registers them again meanwhile
                 {"status": "confirmed", "updated_at": "2026-12-01T12:00:00.000+09:00"})
    store.outbox.repair(found)  # the comparison's finding is out of date for R0001
    store.flush()
    (row,) = _sheet(path)
    assert (row["status"], row["updated_at"]) == ("confirmed", "2026-12-01T12:00:00.000+09:00")
    clock.tick()
    store.reload()
    assert [(r.id, r.status) for r in store.registrations()] == [("R0001", "confirmed")]


def test_several_organizer_edits_in_one_read_are_all_kept(book) -> None:
    store, path, clock = book
    _write(store, clock, [_reg(n) for n in range(1, 4)])
    for n in range(1, 4):
        _edit(path, f"R{n:04d}", room=f"部屋{n}")
    clock.tick()
    store.reload()
    clock.tick()
    store.reload()
    assert store.flush() == 0
    assert [r["room"] for r in _sheet(path)] == ["部屋1", "部屋2", "部屋3"]


def test_a_deleted_bot_row_comes_back_but_a_row_the_organizer_added_does_not(book) -> None:
    store, path, clock = book
    _write(store, clock, [_reg(1)])
    wb = openpyxl.load_workbook(path)
    wb["registrations"].append(list(_reg(9).values()))  # typed in by the organizer
    wb.save(path)
    clock.tick()
    store.reload()
    store.update("registrations", "R0009", {"room": "B"})  # the bot changes both rows later
    store.update("registrations", "R0001", {"room": "B"})
    store.flush()
    clock.tick()
    _edit(path, "R0001")
    _edit(path, "R0009")
    clock.tick()
    store.reload()
    assert store.flush() == 1
    assert [(r["id"], r["room"]) for r in _sheet(path)] == [("R0001", "B")]


def test_rows_are_compared_after_their_entries_are_purged(book) -> None:
    store, path, clock = book
    _write(store, clock, [_reg(1), _reg(2)])
    clock.tick(2 * 86400)
    store.outbox.purge()  # a quiet week: the outbox keeps no entry, the ledger every row
    assert not store.outbox.after(0, "registrations")
    _edit(path, "R0002")
    store.reload()
    assert store.flush() == 1
    assert [r["id"] for r in _sheet(path)] == ["R0001", "R0002"]


def test_rows_written_just_before_a_read_are_compared_at_a_later_read(book) -> None:
    store, path, clock = book
    store.add("registrations", _reg(1))
    store.flush()  # no tick: a copy read now may not hold the row yet
    _edit(path, "R0001")
    store.reload()
    assert store.flush() == 0
    clock.tick()
    store.workbook()  # the file has not changed, yet the copy is read again
    eventually(store.outbox.has_pending, timeout=5, every=0.05)
    assert store.flush() == 1
    assert [r["id"] for r in _sheet(path)] == ["R0001"]


def test_a_row_still_wrong_after_some_rewrites_is_reported_not_rewritten() -> None:
    mine = {"R1": LedgerRow({"id": "R1", "rating": "5"}, 1, True, MAX_REWRITES),
            "R2": LedgerRow({"id": "R2", "rating": "5"}, 2, True, MAX_REWRITES - 1)}
    theirs = {"R1": {"id": "R1", "rating": "4"}, "R2": {"id": "R2", "rating": "4"}}
    repairs = compare("feedback", {"R1", "R2"}, theirs, mine)
    assert repairs.stuck == ["R1"] and repairs.rewrite == [("R2", {"rating": "5"})]
    assert "1 stay different after 3 rewrites" in repairs.summary()


def test_check_reports_rows_the_sheet_lost(book, tmp_path, request) -> None:
    store, path, clock = book
    _write(store, clock, [_reg(1)])
    old_copy = path.read_bytes()
    _write(store, clock, [_reg(2), _reg(3)])
    path.write_bytes(old_copy)
    env = {**os.environ, "WORKBOOK_PATH": str(path), "DATA_DIR": str(tmp_path / "var")}
    if isinstance(store.outbox, FirestoreOutbox):
        env.update(request.getfixturevalue("firestore_env"))
    result = subprocess.run([sys.executable, "-m", "linebot_app", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("! ボットが書いた行がシートから消えたか古い値に戻っています (ボットが書き直します) / "
            "registrations: 2 rows the bot wrote are missing, 0 have old or changed values"
            ) in result.stdout.splitlines()
