"""The storage contract, run against both backends (the workbook and emulated Google Sheets), each
with its outbox in DATA_DIR (sqlite) and in Firestore (Google's emulator)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import openpyxl
import pytest

from storage.sheets.sample import FAQ
from storage.sheets.workbook import WorkbookBackend
from storage.store import Store
from tests.conftest import Emu, eventually, google_env, make_settings, make_store

U1 = "U" + "1" * 32
HOSTILE = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+2", "-3", "@SUM(A1)", "\tタブ", "\r改行"]


@dataclass
class Backed:
    """A Store and a way to read what the backend really holds."""

    store: Store
    rows: Callable[[str], list[dict[str, Any]]]
    formulas: Callable[[str], int]
    edit: Callable[[str, str, Any], None]


def _workbook(tmp_path, **env: str) -> Backed:
    settings = make_settings(tmp_path, **env)
    store = make_store(settings)
    path = settings.workbook_path

    def rows(sheet: str) -> list[dict[str, Any]]:
        values = WorkbookBackend(path).read()[sheet]  # _xHHHH_ decoded, as Excel shows it
        return [dict(zip(values[0], r, strict=False)) for r in values[1:] if any(r)]

    def formulas(sheet: str) -> int:
        ws = openpyxl.load_workbook(path)[sheet]
        return sum(1 for row in ws.iter_rows() for c in row if c.data_type == "f")

    def edit(sheet: str, cell: str, value: Any) -> None:
        wb = openpyxl.load_workbook(path)
        wb[sheet][cell] = value
        wb.save(path)

    return Backed(store, rows, formulas, edit)


def _google(tmp_path, emu: Emu, **env: str) -> Backed:
    store = make_store(make_settings(tmp_path, **google_env(emu), **env))

    return Backed(store, emu.rows, lambda sheet: len(emu.formulas(sheet)), emu.edit)


@pytest.fixture(params=["workbook", "google", "workbook+firestore", "google+firestore"])
def backed(request, tmp_path) -> Iterator[Backed]:
    env = request.getfixturevalue("firestore_env") if "firestore" in request.param else {}
    if request.param.startswith("workbook"):
        yield _workbook(tmp_path, **env)
    else:
        yield _google(tmp_path, request.getfixturevalue("emu"), **env)


def _reg(n: int, **kw: Any) -> dict[str, Any]:
    return {"id": f"R{n:04d}", "created_at": "2026-12-01T10:00:00+09:00", "event_id": "E2",
            "user_id": f"U{n:032x}", "display_name": f"職員{n}", "role": "participant",
            "level": "beginner", "status": "confirmed", **kw}


def test_organizer_sheets_are_read(backed: Backed) -> None:
    org = backed.store.reload()
    assert [e.id for e in org.events] == ["E1", "E2"]
    assert len(org.schedule) == 9 and len(org.faq) == len(FAQ)
    assert org.problems == []


def test_accepted_rows_land_once_in_one_flush(backed: Backed) -> None:
    for n in range(5):
        backed.store.add("registrations", _reg(n))
    assert backed.store.flush() == 5
    assert [r["id"] for r in backed.rows("registrations")] == [f"R{n:04d}" for n in range(5)]
    eventually(lambda: not backed.store.outbox.has_pending(), timeout=5)  # heard as written
    assert backed.store.flush() == 0


def test_ids_stay_text(backed: Backed) -> None:
    backed.store.add("registrations", _reg(1, id="007"))
    backed.store.flush()
    assert [r.id for r in backed.store.reload().registrations] == ["007"]


def test_a_status_update_finds_its_row_by_id(backed: Backed) -> None:
    for n in range(3):
        backed.store.add("registrations", _reg(n))
    backed.store.update("registrations", "R0001", {"status": "cancelled"})
    backed.store.flush()
    statuses = {r["id"]: r["status"] for r in backed.rows("registrations")}
    assert statuses == {"R0000": "confirmed", "R0001": "cancelled", "R0002": "confirmed"}


def test_user_text_is_stored_literally(backed: Backed) -> None:
    for n, text in enumerate(HOSTILE):
        backed.store.add("feedback", {"id": f"F{n}", "event_id": "E1", "user_id": U1,
                                      "impression": text})
    backed.store.flush()
    assert [r["impression"] for r in backed.rows("feedback")] == HOSTILE
    assert backed.formulas("feedback") == 0


def test_registrations_merge_the_sheet_and_the_outbox(backed: Backed) -> None:
    backed.store.add("registrations", _reg(1))
    backed.store.flush()
    backed.store.add("registrations", _reg(3))  # waits while the sheet is read
    backed.store.reload()
    backed.store.add("registrations", _reg(2))
    backed.store.update("registrations", "R0001", {"status": "cancelled"})
    merged = {r.id: r.status for r in backed.store.registrations()}
    assert merged == {"R0001": "cancelled", "R0002": "confirmed", "R0003": "confirmed"}
    assert [e.row_id for e in backed.store.outbox.pending()] == ["R0003", "R0002", "R0001"]


def test_an_organizer_edit_shows_after_a_reload(backed: Backed) -> None:
    backed.store.reload()
    backed.edit("events", "B3", "名前を変えたハンズオン")
    assert backed.store.reload().event("E2").title == "名前を変えたハンズオン"


def test_a_row_written_before_a_lost_outcome_is_not_written_again(backed: Backed) -> None:
    backed.store.add("registrations", _reg(1))
    backed.store.flush()
    # the same row queued again, as after a crash between the write and its confirmation
    backed.store.add("registrations", _reg(1))
    entry = backed.store.outbox.pending()[0]
    backed.store.outbox.mark_attempt([entry.seq])
    backed.store.flush()
    assert [r["id"] for r in backed.rows("registrations")] == ["R0001"]


@pytest.mark.parametrize("state", ["sqlite", "firestore"])
def test_rows_gather_until_a_batch_waits_or_the_oldest_has_waited(tmp_path, request,
                                                                  state: str) -> None:
    from storage.flusher import BATCH_ROWS, GATHER_SECONDS

    env = request.getfixturevalue("firestore_env") if state == "firestore" else {}
    now = [1_800_000_000.0]
    store = make_store(make_settings(tmp_path, **env), clock=lambda: now[0])
    store.add("registrations", _reg(1))
    eventually(store.outbox.has_pending)
    assert store.flush_if_due() == 0  # one row, just now: it waits for company
    now[0] += GATHER_SECONDS
    assert store.flush_if_due() == 1  # ...but not for longer than GATHER_SECONDS
    for n in range(2, BATCH_ROWS + 2):
        store.add("registrations", _reg(n))
    eventually(lambda: store.outbox.health()[0] == BATCH_ROWS)
    assert store.flush_if_due() == BATCH_ROWS  # a batch's worth goes at once


def test_registrations_by_event_and_by_user_are_what_a_scan_finds(backed: Backed) -> None:
    store = backed.store

    def same() -> None:
        every = store.registrations()
        for user in {r.user_id for r in every} | {"U-nobody"}:
            assert store.registrations(user=user) == [r for r in every if r.user_id == user]
        for event in ("E1", "E2", "E9"):
            assert store.registrations(event=event) == [r for r in every if r.event_id == event]
        pair = store.registrations(event="E1", user=_reg(2)["user_id"])
        assert pair == [r for r in every if r.event_id == "E1" and r.user_id == _reg(2)["user_id"]]

    for n in range(1, 5):
        store.add("registrations", _reg(n, event_id="E1" if n % 2 else "E2"))
    same()  # from the outbox
    store.add("registrations", _reg(5, user_id=_reg(2)["user_id"], event_id="E1"))
    store.update("registrations", "R0001", {"status": "cancelled"})
    same()
    store.flush()
    store.reload()  # from the sheet
    same()
    assert [r.status for r in store.registrations(user=_reg(1)["user_id"])] == ["cancelled"]
