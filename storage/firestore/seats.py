"""Seats in Firestore, exact across instances with no hot document.

Under bots/<namespace>/events/<event>:
- people/<user>: the user's active registration of the event (its status, its seat). Created only
  if absent, so one person holds one registration however many instances they reach.
- seats/<role>-<n>, n = 1..capacity: created only if absent; a registration that creates one is
  confirmed, so no more than `capacity` are, and no counter is updated by everyone.
- waitlist-<role>/<queue key or created_at>~<registration>: the queue, in document-name order.
- draws/<role>: a lottery's frozen order, created only if absent, so it is drawn once.

Each step is one batch with its preconditions and its outbox entries: it happens whole or not at
all, and a step that lost a race is tried again with what it learnt.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from domain.schema import Registration
from domain.seats import (
    Booked,
    Cancelled,
    Draw,
    in_draw_order,
    new_draw,
    promote,
    promotion_fields,
)
from storage.firestore.client import Contended, conflicts
from storage.firestore.outbox import FirestoreOutbox
from storage.firestore.seat_docs import TRIES, person_doc, seat_doc
from storage.firestore.sync import SheetSync

log = logging.getLogger(__name__)


class FirestoreSeats(SheetSync):
    """Seat decisions as Firestore documents (see the module's doc)."""

    def __init__(self, outbox: FirestoreOutbox, view: Callable[[], list[Registration]]) -> None:
        self.outbox, self.fs, self.view = outbox, outbox.fs, view
        self._seeded: set[str] = set()
        self._taken: dict[tuple[str, str], set[int]] = {}  # seat numbers seen taken
        self._synced: set[str] = set()  # registrations known to have their documents
        self._capacity: dict[tuple[str, str], int] = {}  # capacities seen (compacted for)
        self._announced: dict[tuple[str, str], Draw] = {}  # draws done and told: final
        outbox.on_adopt.append(self.organizer_edit)

    # ---- booking ------------------------------------------------------------------------------
    def book(self, row: dict[str, Any], capacity: int | None, offer_until: str = "") -> Booked:
        """Confirm while a seat is free and nobody waits, else waitlist (a free seat then goes
        to the first person waiting, confirmed or offered until offer_until); nothing when
        already registered."""
        self._ensure_seeded(row["event_id"])
        person = self._person(row["event_id"], row["user_id"])
        for _ in range(TRIES):
            seat = self._free_seat(row["event_id"], row["role"], capacity)
            if seat and self._someone_waits(row["event_id"], row["role"]):
                seat = None
            reg = Registration(**{**row, "status": "waitlisted" if seat is None else "confirmed"})
            try:
                self._record(reg, seat)
            except conflicts():
                held = person.get(**self.fs.call)
                if held.exists:
                    return Booked(self._reg(held), new=False)
                if seat:
                    self._taken.setdefault((reg.event_id, reg.role), set()).add(seat)
                continue
            return self._booked(reg, capacity, offer_until) if seat is None \
                else Booked(reg, new=True)
        raise Contended(f"no seat decision for {row['event_id']} after {TRIES} tries")

    def apply(self, row: dict[str, Any]) -> Booked:
        """An application for a lottery: the person's document (no seat, no place in the
        queue) and the row, in one batch; nothing when the person is registered already."""
        self._ensure_seeded(row["event_id"])
        reg = Registration(**{**row, "status": "applied"})
        try:
            self._record(reg, 0)
        except conflicts():
            held = self._person(reg.event_id, reg.user_id).get(**self.fs.call)
            if held.exists:
                return Booked(self._reg(held), new=False)
            raise
        return Booked(reg, new=True)

    def _record(self, reg: Registration, seat: int | None) -> None:
        """The person, their seat (or place in the queue; seat 0: neither, an application)
        and the row, in one batch."""
        batch = self.fs.batch()
        batch.create(self._person(reg.event_id, reg.user_id), person_doc(reg, seat))
        if seat:
            batch.create(self._seat(reg.event_id, reg.role, seat), seat_doc(reg))
        elif seat is None:
            batch.create(self._place(reg), {"reg": reg.id, "user": reg.user_id})
        self.outbox.commit([self.outbox.stage("registrations", "append", reg.id,
                                              dataclasses.asdict(reg), ledger=True)], batch)

    def _someone_waits(self, event_id: str, role: str) -> bool:
        """Whether the queue has anyone (asked only when the registrations seen say so: no
        read for the usual registration into a free seat)."""
        seen = any(r.event_id == event_id and r.role == role and r.status == "waitlisted"
                   for r in self.view())
        return seen and self._head(event_id, role) is not None

    def _booked(self, reg: Registration, capacity: int | None, offer_until: str) -> Booked:
        """Waitlisted; but a seat freed meanwhile goes to the first person waiting, who may be
        this one."""
        promoted = self.fill(reg.event_id, reg.role, capacity, reg.updated_at, offer_until,
                             reg.id)
        mine = next((p for p in promoted if p.id == reg.id), None)
        others = tuple(p for p in promoted if p.id != reg.id)
        if mine:
            return Booked(mine, new=True, promoted=others)
        from google.cloud.firestore import FieldFilter
        from google.cloud.firestore_v1.field_path import FieldPath

        ahead = self._queue(reg.event_id, reg.role).where(filter=FieldFilter(
            FieldPath.document_id(), "<=", self._place(reg))).count().get(**self.fs.call)
        return Booked(reg, new=True, position=int(ahead[0][0].value), promoted=others)

    # ---- the queue ----------------------------------------------------------------------------
    def _head(self, event_id: str, role: str) -> Any:
        """The first person waiting (their place document), or None."""
        from google.cloud.firestore_v1.field_path import FieldPath

        heads = self._queue(event_id, role).order_by(FieldPath.document_id()).limit(1).get(
            **self.fs.call)
        return heads[0] if heads else None

    def fill(self, event_id: str, role: str, capacity: int | None, stamp: str,
             offer_until: str = "", booking: str = "") -> list[Registration]:
        """Give free seats to the people waiting first (confirmed, or offered until
        offer_until; booking: the registration being made, confirmed outright if its turn
        comes); returns who got one."""
        promoted: list[Registration] = []
        for _ in range(TRIES):
            if capacity is not None and self._seats_taken(event_id, role) >= capacity:
                break
            head = self._head(event_id, role)
            seat = self._free_seat(event_id, role, capacity) if head else None
            if seat is None:
                break
            batch, staged = self.fs.batch(), []
            try:
                until = "" if head.get("reg") == booking else offer_until
                reg = self._promote(batch, staged, event_id, role, head, seat, stamp, until)
                batch.create(self._seat(event_id, role, seat), seat_doc(reg))
                self.outbox.commit(staged, batch)
            except conflicts():
                self._taken.setdefault((event_id, role), set()).add(seat)
                continue
            promoted.append(reg)
        return promoted

    def _promote(self, batch: Any, staged: list[Any], event_id: str, role: str, head: Any,
                 seat: int, stamp: str, offer_until: str = "") -> Registration:
        """The first person waiting moves to a seat, confirmed or offered until offer_until
        (the caller writes the seat document); the batch fails if anyone moved them meanwhile."""
        ref = self._person(event_id, head.get("user"))
        person = ref.get(**self.fs.call)
        if not person.exists or person.get("reg") != head.get("reg"):
            raise _lost_race()
        reg = promote(self._reg(person), stamp, offer_until)
        batch.delete(head.reference, option=self._if_same(head))
        batch.update(ref, person_doc(reg, seat), option=self._if_same(person))
        staged.append(self.outbox.stage("registrations", "update", reg.id,
                                        promotion_fields(reg), ledger=True))
        log.info("seat %s-%d of an event went to the first person waiting", role, seat)
        return reg

    # ---- cancelling ---------------------------------------------------------------------------
    def cancel(self, event_id: str, user_id: str, stamp: str, capacity: int | None, *,
               ending: str = "cancelled", offer_until: str = "", only: str = "") -> Cancelled:
        """End the user's registration (cancelled, declined or expired); its seat goes to the
        first person waiting (confirmed, or offered until offer_until), in the same batch,
        while the role is under its capacity. only: nothing unless the status is this."""
        self._ensure_seeded(event_id)
        ref = self._person(event_id, user_id)
        for _ in range(TRIES):
            person = ref.get(**self.fs.call)
            if not person.exists or (only and person.get("status") != only):
                return Cancelled(None)
            reg = self._reg(person)
            batch, staged = self.fs.batch(), [self.outbox.stage(
                "registrations", "update", reg.id, {"status": ending, "updated_at": stamp},
                ledger=True)]
            batch.delete(ref, option=self._if_same(person))
            try:
                promoted = self._free(batch, staged, reg, person.get("seat"), capacity, stamp,
                                      offer_until)
                self.outbox.commit(staged, batch)
            except conflicts():
                continue
            return Cancelled(reg, promoted)
        raise Contended(f"no cancellation for {event_id} after {TRIES} tries")

    def _free(self, batch: Any, staged: list[Any], reg: Registration, seat: int | None,
              capacity: int | None, stamp: str, offer_until: str) -> Registration | None:
        """What leaving frees: the place in the queue, or the seat. While the role stays at or
        over capacity without it, a seat numbered beyond capacity moves into it (so that seats
        1..capacity stay taken); below capacity, the first person waiting takes a seat."""
        if not reg.seated:
            batch.delete(self._place(reg))  # (an application has none: a no-op)
            return None
        seat_ref = self._seat(reg.event_id, reg.role, seat or 0)
        held = seat_ref.get(**self.fs.call) if seat else None
        if held is None or not held.exists:
            return None  # no limit (no seat documents), or already moved
        mine = self._if_same(held)
        full = capacity is not None and self._seats_taken(reg.event_id, reg.role) - 1 >= capacity
        head = None if full else self._head(reg.event_id, reg.role)
        if full and seat <= capacity and self._move_over(batch, reg.event_id, reg.role,
                                                         capacity, seat_ref, mine):
            return None
        if head is None:
            batch.delete(seat_ref, option=mine)
            return None
        if capacity is not None and seat > capacity:  # take a seat within capacity instead
            batch.delete(seat_ref, option=mine)
            seat = min(set(range(1, capacity + 1)) - self._seat_numbers(reg.event_id, reg.role))
            seat_ref, mine = self._seat(reg.event_id, reg.role, seat), None
        promoted = self._promote(batch, staged, reg.event_id, reg.role, head, seat, stamp,
                                 offer_until)
        if mine is None:
            batch.create(seat_ref, seat_doc(promoted))
        else:
            batch.update(seat_ref, seat_doc(promoted), option=mine)
        return promoted

    def _move_over(self, batch: Any, event_id: str, role: str, capacity: int, into: Any,
                   into_if: Any = None) -> bool:
        """Move the highest seat beyond capacity into the seat `into` (held, and changed only
        if into_if still holds; else created only if free). False when there is none."""
        over = max((n for n in self._seat_numbers(event_id, role) if n > capacity), default=0)
        if not over:
            return False
        ref = self._seat(event_id, role, over)
        snap = ref.get(**self.fs.call)
        person_ref = self._person(event_id, snap.get("user"))
        person = person_ref.get(**self.fs.call)
        batch.delete(ref, option=self._if_same(snap))
        if into_if is None:
            batch.create(into, snap.to_dict())
        else:
            batch.update(into, snap.to_dict(), option=into_if)
        batch.update(person_ref, {"seat": int(into.id.rsplit("-", 1)[1])},
                     option=self._if_same(person))
        return True

    def compact(self, event_id: str, role: str, capacity: int) -> None:
        """After capacity was lowered: seats beyond it move into free seats within it, so that
        nobody new is confirmed while as many as capacity are."""
        for _ in range(TRIES):
            numbers = self._seat_numbers(event_id, role)
            free = sorted(set(range(1, capacity + 1)) - numbers)
            if not free or max(numbers, default=0) <= capacity:
                return
            batch = self.fs.batch()
            try:
                if self._move_over(batch, event_id, role, capacity,
                                   self._seat(event_id, role, free[0])):
                    batch.commit(**self.fs.call)
            except conflicts():
                continue

    def accept(self, event_id: str, user_id: str, stamp: str) -> Registration | None:
        """An offered seat taken: confirmed. None unless the person holds an offer."""
        ref = self._person(event_id, user_id)
        for _ in range(TRIES):
            person = ref.get(**self.fs.call)
            if not person.exists or person.get("status") != "offered":
                return None
            reg = self._reg(person, status="confirmed", updated_at=stamp)
            batch = self.fs.batch()
            batch.update(ref, person_doc(reg, person.get("seat")), option=self._if_same(person))
            try:
                self.outbox.commit([self.outbox.stage("registrations", "update", reg.id, {
                    "status": "confirmed", "updated_at": stamp}, ledger=True)], batch)
            except conflicts():
                continue
            return reg
        raise Contended(f"no answer to an offer for {event_id} after {TRIES} tries")

    # ---- the lottery --------------------------------------------------------------------------
    def _draw_ref(self, event_id: str, role: str) -> Any:
        return self._event(event_id).collection("draws").document(role)

    def drawn(self, event_id: str, role: str) -> Draw | None:
        """The draw made for this event and role, if any (one read, until it has been told:
        the scheduler asks every round)."""
        if (event_id, role) in self._announced:
            return self._announced[(event_id, role)]
        snap = self._draw_ref(event_id, role).get(**self.fs.call)
        if not snap.exists:
            return None
        fields = snap.to_dict()["draw"]
        draw = Draw(**{**fields, "order": tuple(fields["order"])})
        if draw.notified_at:
            self._announced[(event_id, role)] = draw
        return draw

    def draw(self, event_id: str, role: str, capacity: int | None, closed: str, stamp: str,
             rng: Any) -> Draw | None:
        """Draw once among the applications made before `closed`: the order is frozen in
        draws/<role> (created only if absent, with the lottery row); then each applicant, in
        that order, takes a free seat or a place in the queue, one batch each that holds only
        while they still apply, so that a second scheduler or a call after a crash goes on
        where the first stopped, with the same order."""
        self._ensure_seeded(event_id)
        people = self._applying(event_id, role)
        draw = self.drawn(event_id, role)
        if draw is None:
            if not people:
                return None
            taken = 0 if capacity is None else self._seats_taken(event_id, role)
            draw = new_draw(event_id, role, capacity, closed, stamp, rng,
                            [self._reg(p) for p in people.values()], taken)
            batch = self.fs.batch()
            batch.create(self._draw_ref(event_id, role), {"draw": dataclasses.asdict(draw)})
            try:
                self.outbox.commit([self.outbox.stage("lottery", "append", draw.id, draw.row(),
                                                      ledger=True)], batch)
            except conflicts():  # another instance drew first: its order is the one
                found = self.drawn(event_id, role)
                if found is None:
                    raise
                draw = found
        for index, reg in in_draw_order(draw, (self._reg(p) for p in people.values())):
            self._take_drawn_place(draw, index, people[reg.id], capacity, stamp)
        return draw

    def _applying(self, event_id: str, role: str) -> dict[str, Any]:
        """The person documents of this event and role still applying, by registration id."""
        from google.cloud.firestore import FieldFilter

        found = self._event(event_id).collection("people").where(
            filter=FieldFilter("status", "==", "applied")).get(**self.fs.call)
        return {p.get("reg"): p for p in found if p.get("role") == role}

    def _take_drawn_place(self, draw: Draw, index: int, person: Any, capacity: int | None,
                          stamp: str) -> None:
        """One applicant's result: a seat while one is free, else the queue at its drawn place."""
        for _ in range(TRIES):
            if not person.exists or person.get("status") != "applied":
                return  # placed by another scheduler, or withdrawn
            seat = self._free_seat(draw.event_id, draw.role, capacity)
            reg = self._reg(person, updated_at=stamp)
            batch = self.fs.batch()
            if seat is None:
                reg = replace(reg, status="waitlisted", queue=draw.queue_key(index))
                batch.create(self._place(reg), {"reg": reg.id, "user": reg.user_id})
                fields = {"status": reg.status, "queue": reg.queue, "updated_at": stamp}
            else:
                reg = replace(reg, status="confirmed")
                if seat:
                    batch.create(self._seat(reg.event_id, reg.role, seat), seat_doc(reg))
                fields = {"status": reg.status, "updated_at": stamp}
            batch.update(person.reference, person_doc(reg, seat), option=self._if_same(person))
            try:
                self.outbox.commit([self.outbox.stage("registrations", "update", reg.id, fields,
                                                      ledger=True)], batch)
                return
            except conflicts():
                if seat:
                    self._taken.setdefault((reg.event_id, reg.role), set()).add(seat)
                person = person.reference.get(**self.fs.call)
        raise Contended(f"no drawn place for {draw.event_id} after {TRIES} tries")

    def notified(self, draw: Draw, stamp: str) -> None:
        """The draw's results were queued for sending: its document and row say when."""
        batch = self.fs.batch()
        batch.update(self._draw_ref(draw.event_id, draw.role), {"draw.notified_at": stamp})
        self.outbox.commit([self.outbox.stage("lottery", "update", draw.id,
                                              {"notified_at": stamp}, ledger=True)], batch)
        self._announced[(draw.event_id, draw.role)] = replace(draw, notified_at=stamp)


def _lost_race() -> Exception:
    from google.api_core.exceptions import FailedPrecondition

    return FailedPrecondition("the person waiting first changed meanwhile")
