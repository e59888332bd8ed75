"""The seat, waitlist and lottery rules, as pure functions: a registration is confirmed while
its role has a free seat and nobody waits, and waitlisted after; a freed seat goes to the first
person waiting (confirmed, or offered until a deadline), while the role is under its capacity.
A lottery's applications hold no seat until the draw, made once (Draw), gives them out, and
phase() says where a lottery event stands.

Storage only makes these decisions atomic (the Seats protocol): storage.local.seats.LockedSeats
under one SQLite lock, storage.firestore.seats.FirestoreSeats with one document per seat.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from domain.schema import Event, Registration


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


APPLICATIONS, DRAWING, FIRST_COME = "applications", "drawing", "first_come"


def phase(event: Event, now: dt.datetime, waiting: bool = True) -> str:
    """Where an event's seats stand: APPLICATIONS before a lottery's draw time (registrations
    are applications), DRAWING from the draw time until the start while applications wait to
    be drawn (nobody takes a seat first come meanwhile), else FIRST_COME."""
    if event.allocation != "lottery" or event.lottery_at is None:
        return FIRST_COME
    if now < event.lottery_at:
        return APPLICATIONS
    if waiting and event.status != "cancelled" and now < event.starts_at:
        return DRAWING
    return FIRST_COME
