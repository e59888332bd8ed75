"""Seats: a registration is confirmed while its role has a free seat and nobody waits, and
waitlisted after; a freed seat goes to the first person waiting (confirmed, or offered until a
deadline), while the role is under its capacity. A lottery's applications hold no seat until
the draw, made once (Draw), gives them out.

One contract, two implementations: LockedSeats decides under one SQLite lock from the merged
view of the sheet and the outbox (one machine); storage.firestore.seats.FirestoreSeats claims one
document per seat (several instances).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from domain.schema import Registration


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
    promoted: Registration | None = None  # the first person waiting, now confirmed or offered


@dataclass(frozen=True)
class Draw:
    """A lottery's result, frozen once: the applicants in drawn order. The first `winners`
    still applying are confirmed; the rest wait in this order (see queue_key)."""

    event_id: str
    role: str
    drawn_at: str
    order: tuple[str, ...]  # registration ids
    winners: int
    capacity: int | None
    notified_at: str = ""

    @property
    def id(self) -> str:
        return draw_id(self.event_id, self.role)

    def row(self) -> dict[str, Any]:
        """The draw as a row of the lottery sheet."""
        return {"id": self.id, "drawn_at": self.drawn_at, "event_id": self.event_id,
                "role": self.role, "capacity": "" if self.capacity is None else self.capacity,
                "applicants": len(self.order), "winners": self.winners,
                "order": " ".join(self.order), "notified_at": self.notified_at}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Draw:
        capacity = str(row.get("capacity", "")).strip()
        return cls(str(row["event_id"]), str(row["role"]), str(row["drawn_at"]),
                   tuple(str(row.get("order", "")).split()), int(float(row.get("winners") or 0)),
                   int(float(capacity)) if capacity else None, str(row.get("notified_at") or ""))

    def queue_key(self, index: int) -> str:
        """Where a loser stands: after everyone waiting before the draw, in drawn order, and
        before anyone registering after it (the draw time to the second, then '#', sorts
        before a created_at of that same second: '#' < '.')."""
        return f"{self.drawn_at[:19]}#{index:06d}"


def draw_id(event_id: str, role: str) -> str:
    """The lottery sheet's row id of an event's draw for a role."""
    return f"L-{event_id}-{role}"


def draw_order(ids: Iterable[str], rng: random.Random) -> tuple[str, ...]:
    """The applicants in a random order, every order equally likely (rng: secrets.SystemRandom
    in the bot; a seeded random.Random in tests). Sorted first, so a seed gives one order."""
    order = sorted(ids)
    rng.shuffle(order)
    return tuple(order)


def new_draw(event_id: str, role: str, capacity: int | None, closed: str, stamp: str,
             rng: random.Random, waiting: list[Registration], taken: int) -> Draw:
    """The draw among the applications made before `closed`; those made later (as the draw
    was being made) come after it, first come."""
    entered = [r.id for r in waiting if r.created_at < closed]
    free = len(entered) if capacity is None else max(capacity - taken, 0)
    return Draw(event_id, role, stamp, draw_order(entered, rng), min(free, len(entered)),
                capacity)


def in_draw_order(draw: Draw, applied: Iterable[Registration]) -> list[tuple[int, Registration]]:
    """The registrations still applying, with their index in the draw: drawn order first, then
    any that arrived as the draw was made (first come)."""
    by_id = {r.id: r for r in applied}
    drawn = [(i, by_id.pop(rid)) for i, rid in enumerate(draw.order) if rid in by_id]
    late = sorted(by_id.values(), key=lambda r: (r.created_at, r.id))
    return drawn + [(len(draw.order) + i, r) for i, r in enumerate(late)]


def applicants(regs: Iterable[Registration], event_id: str, role: str) -> list[Registration]:
    """The applications of one event and role not yet drawn."""
    return [r for r in regs if r.event_id == event_id and r.role == role and r.status == "applied"]


class Seats(Protocol):
    """Seat decisions; each records its rows in the outbox in the same step."""

    def book(self, row: dict[str, Any], capacity: int | None, offer_until: str = "") -> Booked: ...
    def fill(self, event_id: str, role: str, capacity: int | None, stamp: str,
             offer_until: str = "") -> list[Registration]: ...
    def apply(self, row: dict[str, Any]) -> Booked: ...
    def cancel(self, event_id: str, user_id: str, stamp: str, capacity: int | None, *,
               ending: str = "cancelled", offer_until: str = "", only: str = "") -> Cancelled: ...
    def accept(self, event_id: str, user_id: str, stamp: str) -> Registration | None: ...
    def draw(self, event_id: str, role: str, capacity: int | None, closed: str, stamp: str,
             rng: random.Random) -> Draw | None: ...
    def drawn(self, event_id: str, role: str) -> Draw | None: ...
    def notified(self, draw: Draw, stamp: str) -> None: ...


def active_of(regs: Iterable[Registration], user_id: str, event_id: str) -> Registration | None:
    """The user's registration for the event that is not cancelled, if any."""
    return next((r for r in regs if r.user_id == user_id and r.event_id == event_id
                 and r.active), None)


def confirmed_count(regs: Iterable[Registration], event_id: str, role: str) -> int:
    """Seats taken in one event and role: confirmed, and offered to someone who may answer."""
    return sum(1 for r in regs if r.event_id == event_id and r.role == role and r.seated)


def queue(regs: Iterable[Registration], event_id: str, role: str) -> list[Registration]:
    """The waitlist of one event and role: first come first, a draw's losers in drawn order."""
    return sorted((r for r in regs if r.event_id == event_id and r.role == role
                   and r.status == "waitlisted"), key=queue_key)


def queue_key(reg: Registration) -> tuple[str, str]:
    """A waiting registration's place: its queue key (a draw's) or when it was made."""
    return (reg.queue or reg.created_at, reg.id)


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
    """What LockedSeats uses of storage.store.Store."""

    outbox: _Locking

    def registrations(self) -> list[Registration]: ...
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
            regs = self.store.registrations()
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
            return self._fill(self.store.registrations(), event_id, role, capacity, stamp,
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
            mine = active_of(self.store.registrations(), row["user_id"], row["event_id"])
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
            regs = self.store.registrations()
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
            mine = active_of(self.store.registrations(), user_id, event_id)
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
            regs = self.store.registrations()
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


def promote(reg: Registration, stamp: str, offer_until: str) -> Registration:
    """The first person waiting, given a freed seat: confirmed, or offered until a deadline.
    An answer to the reconfirmation given while waiting (by registering close to the day) is
    asked again: the promotion asks, or the reconfirmation round does."""
    status = "offered" if offer_until else "confirmed"
    return dataclasses.replace(reg, status=status, offer_until=offer_until, reconfirmed="",
                               updated_at=stamp)


def promotion_fields(reg: Registration) -> dict[str, str]:
    """The row's cells a promotion changes."""
    return {"status": reg.status, "offer_until": reg.offer_until, "reconfirmed": "",
            "updated_at": reg.updated_at}
