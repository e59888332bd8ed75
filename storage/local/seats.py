"""Seat decisions on one machine: LockedSeats applies domain.seats' rules under the outbox's
write lock (one across threads and processes), counting the sheet's rows plus the rows still in
the outbox."""

from __future__ import annotations

import dataclasses
import random
from contextlib import AbstractContextManager
from typing import Any, Protocol

from domain.schema import Registration
from domain.seats import (
    Booked,
    Cancelled,
    Draw,
    active_of,
    applicants,
    confirmed_count,
    draw_id,
    has_room,
    in_draw_order,
    new_draw,
    promote,
    promotion_fields,
    queue,
    waitlist_position,
)


class _Locking(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...


class _Store(Protocol):
    """What LockedSeats uses of storage.store.Store."""

    outbox: _Locking

    def registrations(self, *, event: str | None = None, user: str | None = None
                      ) -> list[Registration]: ...
    def rows(self, sheet: str) -> list[dict[str, Any]]: ...
    def settle(self) -> None: ...
    def add(self, sheet: str, row: dict[str, Any]) -> None: ...
    def update(self, sheet: str, row_id: str, fields: dict[str, Any]) -> None: ...


class LockedSeats:
    """Seats decided under the outbox's write lock (one across threads and processes of one
    machine), counting the sheet's rows plus the rows still in the outbox."""

    def __init__(self, store: _Store) -> None:
        self.store = store

    def book(self, row: dict[str, Any], capacity: int | None, offer_until: str = "") -> Booked:
        """Confirm while a seat is free and nobody waits, else waitlist (a free seat then goes
        to the first person waiting, confirmed or offered until offer_until: an organizer
        freed it by hand); nothing when already registered."""
        self.store.settle()  # an organizer's save counts (read outside the lock)
        with self.store.outbox.transaction():
            regs = self.store.registrations(event=row["event_id"])
            mine = active_of(regs, row["user_id"], row["event_id"])
            if mine:
                return Booked(mine, new=False)
            waiting = queue(regs, row["event_id"], row["role"])
            free = has_room(confirmed_count(regs, row["event_id"], row["role"]), capacity)
            row = {**row, "status": "confirmed" if free and not waiting else "waitlisted"}
            self.store.add("registrations", row)
            reg = Registration(**row)
            regs = [*regs, reg]
            promoted = self._fill(regs, reg.event_id, reg.role, capacity, reg.updated_at,
                                  offer_until, reg.id) if free and waiting else []
        after = {r.id: r for r in regs} | {p.id: p for p in promoted}
        mine = after[reg.id]
        return Booked(mine, new=True, position=waitlist_position(after.values(), mine),
                      promoted=tuple(p for p in promoted if p.id != reg.id))

    def fill(self, event_id: str, role: str, capacity: int | None, stamp: str,
             offer_until: str = "") -> list[Registration]:
        """Free seats go to the people waiting first (after an organizer freed one by hand)."""
        self.store.settle()
        with self.store.outbox.transaction():
            return self._fill(self.store.registrations(event=event_id), event_id, role, capacity, stamp,
                              offer_until)

    def _fill(self, regs: list[Registration], event_id: str, role: str, capacity: int | None,
              stamp: str, offer_until: str, booking: str = "") -> list[Registration]:
        """(booking: the registration being made, confirmed outright if its turn comes.)"""
        taken, promoted = confirmed_count(regs, event_id, role), []
        for head in queue(regs, event_id, role):
            if not has_room(taken + len(promoted), capacity):
                break
            promoted.append(promote(head, stamp, "" if head.id == booking else offer_until))
            self.store.update("registrations", head.id, promotion_fields(promoted[-1]))
        return promoted

    def apply(self, row: dict[str, Any]) -> Booked:
        """An application for a lottery (status applied): it holds no seat until the draw;
        nothing when the person already has an active registration for the event."""
        with self.store.outbox.transaction():
            mine = active_of(self.store.registrations(user=row["user_id"]), row["user_id"],
                             row["event_id"])
            if mine:
                return Booked(mine, new=False)
            row = {**row, "status": "applied"}
            self.store.add("registrations", row)
        return Booked(Registration(**row), new=True)

    def cancel(self, event_id: str, user_id: str, stamp: str, capacity: int | None, *,
               ending: str = "cancelled", offer_until: str = "", only: str = "") -> Cancelled:
        """End the user's registration (cancelled; declined or expired: an offer refused or not
        answered); a freed seat goes to the first person waiting, confirmed, or offered until
        offer_until. only: do nothing unless the registration has this status."""
        self.store.settle()
        with self.store.outbox.transaction():
            regs = self.store.registrations(event=event_id)
            mine = active_of(regs, user_id, event_id)
            if mine is None or (only and mine.status != only):
                return Cancelled(None)
            self.store.update("registrations", mine.id, {"status": ending, "updated_at": stamp})
            taken = confirmed_count(regs, event_id, mine.role) - mine.seated
            line = queue(regs, event_id, mine.role)
            if not mine.seated or not line or not has_room(taken, capacity):
                return Cancelled(mine)
            promoted = promote(line[0], stamp, offer_until)
            self.store.update("registrations", promoted.id, promotion_fields(promoted))
        return Cancelled(mine, promoted)

    def accept(self, event_id: str, user_id: str, stamp: str) -> Registration | None:
        """An offered seat taken: confirmed. None unless the person holds an offer."""
        with self.store.outbox.transaction():
            mine = active_of(self.store.registrations(user=user_id), user_id, event_id)
            if mine is None or mine.status != "offered":
                return None
            self.store.update("registrations", mine.id,
                              {"status": "confirmed", "updated_at": stamp})
        return dataclasses.replace(mine, status="confirmed", updated_at=stamp)

    # ---- the lottery ----------------------------------------------------------------------
    def drawn(self, event_id: str, role: str) -> Draw | None:
        """The draw made for this event and role, if any (from the lottery sheet and outbox)."""
        wanted = draw_id(event_id, role)
        row = next((r for r in self.store.rows("lottery") if r.get("id") == wanted), None)
        return Draw.from_row(row) if row else None

    def draw(self, event_id: str, role: str, capacity: int | None, closed: str, stamp: str,
             rng: random.Random) -> Draw | None:
        """Draw once among the applications made before `closed` (the draw time): the order
        is frozen in the lottery sheet with the seats it gives, in one step; a later call
        re-applies the same order to anyone still applying (None: nobody applied and nothing
        was drawn)."""
        self.store.settle()
        with self.store.outbox.transaction():
            regs = self.store.registrations(event=event_id)
            waiting = applicants(regs, event_id, role)
            draw = self.drawn(event_id, role)
            if draw is None:
                if not waiting:
                    return None
                draw = new_draw(event_id, role, capacity, closed, stamp, rng, waiting,
                                confirmed_count(regs, event_id, role))
                self.store.add("lottery", draw.row())
            taken = confirmed_count(regs, event_id, role)
            for index, reg in in_draw_order(draw, waiting):
                if has_room(taken, capacity):
                    taken += 1
                    fields = {"status": "confirmed", "updated_at": stamp}
                else:
                    fields = {"status": "waitlisted", "queue": draw.queue_key(index),
                              "updated_at": stamp}
                self.store.update("registrations", reg.id, fields)
        return draw

    def notified(self, draw: Draw, stamp: str) -> None:
        """The draw's results were queued for sending: the lottery sheet says when."""
        self.store.update("lottery", draw.id, {"notified_at": stamp})
