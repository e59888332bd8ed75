"""Seats: a registration is confirmed while its role has a free seat and waitlisted after; a
cancelled seat goes to the first person waiting, while the role is under its capacity.

One contract, two implementations: LockedSeats decides under one SQLite lock from the merged
view of the sheet and the outbox (one machine); sheets.firestore_seats.FirestoreSeats claims one
document per seat (several instances).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sheets.schema import Registration


@dataclass(frozen=True)
class Booked:
    """What a registration came to."""

    reg: Registration  # the registration recorded, or the one the person already had
    new: bool  # False: they already had an active registration, and nothing was recorded
    position: int = 0  # their place in the waitlist (1-based), when waitlisted
    promoted: tuple[Registration, ...] = ()  # people waiting who got a seat on the way


@dataclass(frozen=True)
class Cancelled:
    """What a cancellation came to."""

    reg: Registration | None  # None: the person had no active registration for the event
    promoted: Registration | None = None  # the first person waiting, now confirmed


class Seats(Protocol):
    """Seat decisions; each records its rows in the outbox in the same step."""

    def book(self, row: dict[str, Any], capacity: int | None) -> Booked: ...
    def apply(self, row: dict[str, Any]) -> Booked: ...
    def cancel(self, event_id: str, user_id: str, stamp: str, capacity: int | None
               ) -> Cancelled: ...


def active_of(regs: Iterable[Registration], user_id: str, event_id: str) -> Registration | None:
    """The user's registration for the event that is not cancelled, if any."""
    return next((r for r in regs if r.user_id == user_id and r.event_id == event_id
                 and r.active), None)


def confirmed_count(regs: Iterable[Registration], event_id: str, role: str) -> int:
    """Confirmed registrations of one event and role."""
    return sum(1 for r in regs if r.event_id == event_id and r.role == role
               and r.status == "confirmed")


def queue(regs: Iterable[Registration], event_id: str, role: str) -> list[Registration]:
    """The waitlist of one event and role, first come first."""
    return sorted((r for r in regs if r.event_id == event_id and r.role == role
                   and r.status == "waitlisted"), key=lambda r: (r.created_at, r.id))


def waitlist_position(regs: Iterable[Registration], reg: Registration) -> int:
    """1-based place in the waitlist of the registration's event and role (0 if not waiting)."""
    line = queue(regs, reg.event_id, reg.role)
    return next((i for i, r in enumerate(line, start=1) if r.id == reg.id), 0)


def has_room(taken: int, capacity: int | None) -> bool:
    """Whether one more seat fits (None: no limit)."""
    return capacity is None or taken < capacity


class _Locking(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...


class _Store(Protocol):
    """What LockedSeats uses of sheets.store.Store."""

    outbox: _Locking

    def registrations(self) -> list[Registration]: ...
    def settle(self) -> None: ...
    def add(self, sheet: str, row: dict[str, Any]) -> None: ...
    def update(self, sheet: str, row_id: str, fields: dict[str, Any]) -> None: ...


class LockedSeats:
    """Seats decided under the outbox's write lock (one across threads and processes of one
    machine), counting the sheet's rows plus the rows still in the outbox."""

    def __init__(self, store: _Store) -> None:
        self.store = store

    def book(self, row: dict[str, Any], capacity: int | None) -> Booked:
        """Confirm while a seat is free, else waitlist; nothing when already registered."""
        self.store.settle()  # an organizer's save counts (read outside the lock)
        with self.store.outbox.transaction():
            regs = self.store.registrations()
            mine = active_of(regs, row["user_id"], row["event_id"])
            if mine:
                return Booked(mine, new=False)
            free = has_room(confirmed_count(regs, row["event_id"], row["role"]), capacity)
            row = {**row, "status": "confirmed" if free else "waitlisted"}
            self.store.add("registrations", row)
        reg = Registration(**row)
        return Booked(reg, new=True, position=waitlist_position([*regs, reg], reg))

    def apply(self, row: dict[str, Any]) -> Booked:
        """An application for a lottery (status applied): it holds no seat until the draw;
        nothing when the person already has an active registration for the event."""
        with self.store.outbox.transaction():
            mine = active_of(self.store.registrations(), row["user_id"], row["event_id"])
            if mine:
                return Booked(mine, new=False)
            row = {**row, "status": "applied"}
            self.store.add("registrations", row)
        return Booked(Registration(**row), new=True)

    def cancel(self, event_id: str, user_id: str, stamp: str, capacity: int | None
               ) -> Cancelled:
        """Cancel the user's registration; a freed seat goes to the first person waiting."""
        self.store.settle()
        with self.store.outbox.transaction():
            regs = self.store.registrations()
            mine = active_of(regs, user_id, event_id)
            if mine is None:
                return Cancelled(None)
            self.store.update("registrations", mine.id, {"status": "cancelled", "updated_at": stamp})
            taken = confirmed_count(regs, event_id, mine.role) - (mine.status == "confirmed")
            line = queue(regs, event_id, mine.role)
            if mine.status != "confirmed" or not line or not has_room(taken, capacity):
                return Cancelled(mine)
            self.store.update("registrations", line[0].id,
                              {"status": "confirmed", "updated_at": stamp})
        return Cancelled(mine, line[0])
