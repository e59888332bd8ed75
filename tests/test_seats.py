"""Seat decisions, run against both implementations: one SQLite lock over the merged view, and
one Firestore document per seat. Two stores on the same storage play two instances."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from domain.schema import COLUMNS, Registration
from storage.local.outbox import SqliteOutbox
from storage.sheets.workbook import WorkbookBackend
from storage.store import Store
from tests.conftest import STORES, eventually, make_settings, make_store

STAMP = "2026-12-01T10:00:00.000+09:00"


class Clock:
    """Seconds that pass only when told (a copy read 2 s after a write holds it)."""

    def __init__(self) -> None:
        self.now = time.time() - 3600

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "firestore"])
def instances(request, tmp_path: Path) -> Iterator[tuple[Callable[[], Store], Path, Clock]]:
    """A maker of stores sharing one workbook and one state (each store an instance)."""
    env = request.getfixturevalue("firestore_env") if request.param == "firestore" else {}
    settings = make_settings(tmp_path, **env)
    clock = Clock()
    yield (lambda: make_store(settings, clock=clock)), settings.workbook_path, clock


def row(n: int, event: str = "E2", role: str = "participant", second: int | None = None
        ) -> dict[str, Any]:
    stamp = f"2026-12-01T10:{(second if second is not None else n) // 60:02d}:" \
            f"{(second if second is not None else n) % 60:02d}.000+09:00"
    return {"id": f"R{n:04d}", "created_at": stamp, "event_id": event, "user_id": f"U{n:032x}",
            "display_name": f"職員{n}", "role": role, "level": "beginner", "status": "",
            "room": "", "updated_at": stamp}


def _sheet_statuses(path: Path, *stores: Store) -> dict[str, str]:
    """What the workbook holds once everything is written (by whichever holds the lease, once
    it has heard of every row)."""
    def written() -> bool:
        for store in stores:
            store.drain(seconds=10)
        return not any(store.outbox.has_pending() for store in stores)

    eventually(written, timeout=30, every=0.2)
    values = WorkbookBackend(path).read()["registrations"]
    header = values[0]
    return {r[0]: r[header.index("status")] for r in values[1:] if r and r[0]}


def test_instances_booking_at_once_never_exceed_capacity(instances) -> None:
    make, path, _ = instances
    stores = [make(), make()]
    results: list[Any] = []

    def one(n: int) -> None:
        results.append(stores[n % 2].seats.book(row(n), 10))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(1, 31)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(r.reg.status for r in results) == ["confirmed"] * 10 + ["waitlisted"] * 20
    assert all(r.new for r in results)
    statuses = _sheet_statuses(path, *stores)
    assert sorted(statuses.values()) == ["confirmed"] * 10 + ["waitlisted"] * 20


def test_a_person_booking_twice_at_once_is_recorded_once(instances) -> None:
    make, path, _ = instances
    stores = [make(), make()]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda s=s, n=n: results.append(
        s.seats.book({**row(1), "id": f"R-twice-{n}"}, 10))) for n, s in enumerate(stores * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.new for r in results) == [False, False, False, True]
    kept = next(r.reg.id for r in results if r.new)
    assert {r.reg.id for r in results} == {kept}  # the others are told of that one
    assert list(_sheet_statuses(path, *stores)) == [kept]


def test_a_freed_seat_goes_to_the_first_person_waiting(instances) -> None:
    make, path, _ = instances
    a, b = make(), make()
    a.seats.book(row(1), 1)
    b.seats.book(row(2, second=30), 1)  # booked first, but registered later: waiting second
    a.seats.book(row(3, second=20), 1)  # registered earlier: waiting first
    done = b.seats.cancel("E2", row(1)["user_id"], STAMP, 1)
    assert done.reg and done.reg.id == "R0001"
    assert done.promoted and done.promoted.id == "R0003"
    assert _sheet_statuses(path, a, b) == {"R0001": "cancelled", "R0002": "waitlisted",
                                        "R0003": "confirmed"}


def test_a_waitlisted_cancellation_moves_nobody_and_keeps_the_queue(instances) -> None:
    make, path, _ = instances
    a, b = make(), make()
    for n in (1, 2, 3):
        a.seats.book(row(n), 1)
    done = b.seats.cancel("E2", row(2)["user_id"], STAMP, 1)
    assert done.reg.id == "R0002" and done.promoted is None
    again = b.seats.cancel("E2", row(2)["user_id"], STAMP, 1)
    assert again.reg is None  # nothing left to cancel
    done = a.seats.cancel("E2", row(1)["user_id"], STAMP, 1)
    assert done.promoted.id == "R0003"
    assert b.seats.book(row(4), 1).position == 1  # R0003 took the seat: R0004 is first in line


def test_no_seat_is_handed_on_while_the_role_is_over_capacity(instances) -> None:
    make, path, _ = instances
    a = make()
    for n in (1, 2, 3, 4):
        a.seats.book(row(n), 3)
    done = a.seats.cancel("E2", row(1)["user_id"], STAMP, 2)  # the organizer lowered it to 2
    assert done.promoted is None
    assert _sheet_statuses(path, a)["R0004"] == "waitlisted"


def test_capacity_zero_waitlists_and_no_capacity_confirms(instances) -> None:
    make, _, _ = instances
    a = make()
    assert a.seats.book(row(1), 0).reg.status == "waitlisted"
    assert [a.seats.book(row(n, role="observer"), None).reg.status for n in (2, 3, 4)] \
        == ["confirmed"] * 3


def _type_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows an organizer typed into the registrations sheet (or the bot wrote before)."""
    wb = openpyxl.load_workbook(path)
    for r in rows:
        wb["registrations"].append([r.get(k, "") for k in COLUMNS["registrations"]])
    wb.save(path)


def _holds_the_sheet_rows(a: Store, b: Store) -> None:
    """Two confirmed and one waiting in the sheet, for 3 seats: the free seat goes to the
    person waiting (R0003), not to the next registration, which waits behind."""
    booked = b.seats.book(row(4), 3)
    assert (booked.reg.status, booked.position) == ("waitlisted", 1)
    assert [(p.id, p.status) for p in booked.promoted] == [("R0003", "confirmed")]
    booked = a.seats.book(row(5), 3)
    assert (booked.reg.status, booked.position) == ("waitlisted", 2)
    assert a.seats.book(row(1), 3).new is False  # already registered, by the sheet's row
    done = b.seats.cancel("E2", row(1)["user_id"], STAMP, 3)
    assert done.promoted.id == "R0004"


def test_rows_already_in_the_sheet_hold_their_seats_from_the_first_booking(instances) -> None:
    make, path, _ = instances
    _type_rows(path, [{**row(1), "status": "confirmed"}, {**row(2), "status": "confirmed"},
                      {**row(3), "status": "waitlisted"}])
    holder = make()  # another instance holds the flush lease, and has not read the sheet:
    assert holder.outbox.take_lease(60, ignore_schedule=True)  # these two only book
    a, b = make(), make()
    _holds_the_sheet_rows(a, b)


def test_rows_an_organizer_types_in_later_hold_their_seats(instances) -> None:
    make, path, _ = instances
    a, b = make(), make()
    a.reload()
    assert a.seats.book(row(9), 3).reg.status == "confirmed"  # the event's first booking
    a.seats.cancel("E2", row(9)["user_id"], STAMP, 3)
    a.drain(seconds=10)
    _type_rows(path, [{**row(1), "status": "confirmed"}, {**row(2), "status": "confirmed"},
                      {**row(3), "status": "waitlisted"}])
    a.reload()  # the lease holder reads them
    b.reload()
    _holds_the_sheet_rows(a, b)


def test_an_organizer_cancel_in_the_sheet_frees_the_seat(instances) -> None:
    make, path, clock = instances
    a = make()
    a.reload()
    for n in (1, 2):
        a.seats.book(row(n), 2)
    a.drain(seconds=10)
    clock.now += 5
    wb = openpyxl.load_workbook(path)
    for cells in wb["registrations"].iter_rows(min_row=2):
        if cells[0].value == "R0001":
            cells[COLUMNS["registrations"].index("status")].value = "cancelled"
    wb.save(path)
    a.reload()  # the organizer's edit is kept, and the seat follows it
    assert {r.id: r.status for r in a.registrations()}["R0001"] == "cancelled"
    assert a.seats.book(row(3), 2).reg.status == "confirmed"
    assert a.seats.book(row(4), 2).reg.status == "waitlisted"
    assert a.seats.book(row(1), 2).reg.status == "waitlisted"  # may register again


def test_registration_keeps_its_fields(instances) -> None:
    make, _, _ = instances
    a = make()
    booked = a.seats.book(row(7, role="observer"), 5)
    assert booked.reg == Registration(**{**row(7, role="observer"), "status": "confirmed"})


def _set_capacity(path: Path, event: str, capacity: int) -> None:
    wb = openpyxl.load_workbook(path)
    for cells in wb["events"].iter_rows(min_row=2):
        if cells[0].value == event:
            cells[COLUMNS["events"].index("capacity")].value = capacity
    wb.save(path)


def test_lowering_capacity_confirms_nobody_new_until_the_role_is_below_it(
        instances, monkeypatch) -> None:
    make, path, _ = instances
    monkeypatch.setattr("storage.firestore.seat_docs.random.choice", max)  # seats 10, 9, 8 ...
    a, b = make(), make()
    a.reload()
    for n in range(1, 6):
        assert a.seats.book(row(n), 10).reg.status == "confirmed"
    _set_capacity(path, "E2", 3)  # the organizer moves to a smaller room
    a.reload()
    assert b.seats.book(row(6), 3).reg.status == "waitlisted"
    for n in (1, 2):  # 5 -> 3 confirmed: still not below capacity
        assert b.seats.cancel("E2", row(n)["user_id"], STAMP, 3).promoted is None
    assert a.seats.book(row(7), 3).reg.status == "waitlisted"
    done = a.seats.cancel("E2", row(3)["user_id"], STAMP, 3)  # 2 left: the first waiting gets in
    assert done.promoted and done.promoted.id == "R0006"
    assert b.seats.book(row(8), 3).reg.status == "waitlisted"


class CountingBackend(WorkbookBackend):
    """The workbook, counting the reads the store asks of it."""

    reads = 0

    def read(self) -> dict[str, list[list[Any]]]:
        self.reads += 1
        return super().read()


def test_an_organizers_save_counts_at_the_next_booking_and_the_bots_own_save_costs_no_read(
        tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    backend = CountingBackend(settings.workbook_path)
    clock = Clock()
    stores = [Store(backend, SqliteOutbox(settings.data_dir / "outbox.sqlite3", clock=clock),
                    flush_interval=0, snapshot=None, check_seconds=3600, clock=clock)
              for _ in range(2)]  # two workers of one machine
    STORES.extend(stores)
    for store in stores:
        store.workbook()  # each worker has read the sheet once
    for n in range(1, 5):
        stores[0].seats.book(row(n), 5)
    stores[0].flush(now=True)  # the bot's own save: both instances of this machine know it
    before = backend.reads
    assert stores[1].seats.book(row(5), 5).reg.status == "confirmed"
    assert backend.reads == before  # decided from the copy and the outbox, no read waited for
    clock.now += 10  # the rows are older than any copy the bot would be unsure of
    wb = openpyxl.load_workbook(settings.workbook_path)  # the organizer cancels R0001 and saves
    ws = wb["registrations"]
    for cells in ws.iter_rows(min_row=2):
        if cells[0].value == "R0001":
            cells[COLUMNS["registrations"].index("status")].value = "cancelled"
    wb.save(settings.workbook_path)
    assert stores[1].seats.book(row(6), 5).reg.status == "confirmed"  # the seat R0001 left
    assert backend.reads == before + 1
    assert stores[0].seats.book(row(7), 5).reg.status == "waitlisted"
