"""Rows the bot did not decide, brought into Firestore's seats: rows from before Firestore,
and organizers' edits of a status in the sheet."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from domain.schema import SEATED, Registration, Workbook
from storage.firestore.client import conflicts
from storage.firestore.seat_docs import TRIES, SeatDocs, person_doc, seat_doc

log = logging.getLogger(__name__)


class SheetSync(SeatDocs):
    """Seat documents made to agree with the sheet's rows."""

    compact: Callable[[str, str, int], None]

    def sync(self, regs: list[Registration]) -> None:
        """Give each active registration without a person document one, in order of
        registration: confirmed ones the lowest free seat (beyond capacity when none is free:
        an organizer decided so), waitlisted ones a place in the queue."""
        todo = sorted((r for r in regs if r.active and r.id not in self._synced),
                      key=lambda r: (r.created_at, r.id))
        refs = [self._person(r.event_id, r.user_id) for r in todo]
        found = {s.reference.path for s in self.fs.client().get_all(refs, **self.fs.call)
                 if s.exists} if refs else set()
        self._taken.clear()  # counted afresh for these
        for reg, ref in zip(todo, refs, strict=True):
            settled = ref.path in found
            for _ in range(TRIES if not settled else 0):
                if self._settle(reg, None):
                    break
            self._synced.add(reg.id)

    def sync_sheet(self, org: Workbook) -> None:
        """On the lease holder, after each read: rows organizers typed into registrations for
        events still ahead get their documents (rows the bot wrote are in its ledger)."""
        if not self.outbox.repairs_here():
            return
        soon = dt.date.today() - dt.timedelta(days=1)
        ahead = {e.id for e in org.events if e.date >= soon}
        for event in (e for e in org.events if e.id in ahead):
            for role in ("participant", "observer"):
                capacity = event.capacity_for(role)
                if capacity is not None and self._capacity.get((event.id, role)) != capacity:
                    self.compact(event.id, role, capacity)
                    self._capacity[(event.id, role)] = capacity
        mine = self.outbox.ledger_ids("registrations")
        merged = {r.id: r for r in self.view()}
        self.sync([merged.get(r.id, r) for r in org.registrations
                   if r.event_id in ahead and r.id not in mine])

    def organizer_edit(self, sheet: str, fields: dict[str, Any]) -> None:
        """An organizer changed a registration's status in the sheet: its documents follow."""
        if sheet != "registrations" or not fields.get("event_id") or not fields.get("user_id"):
            return
        reg = Registration(**{k: str(v) for k, v in fields.items()
                              if k in Registration.__dataclass_fields__})
        ref = self._person(reg.event_id, reg.user_id)
        for _ in range(TRIES):
            person = ref.get(**self.fs.call)
            if person.exists and person.get("reg") != reg.id:
                return  # the person holds another registration of the event
            if person.exists and person.get("status") == reg.status:
                return
            if not person.exists and not reg.active:
                return
            if self._settle(reg, person if person.exists else None):
                return
        log.warning("seats did not follow an organizer's edit of a registration")

    def _settle(self, reg: Registration, person: Any) -> bool:
        """Make the documents say what reg says: leave the old seat or place, take a new one
        (the lowest free seat number). False when a race was lost."""
        batch, ref = self.fs.batch(), self._person(reg.event_id, reg.user_id)
        if person is not None:
            old_seat = person.get("seat")
            if person.get("status") in SEATED and old_seat:
                batch.delete(self._seat(reg.event_id, reg.role, old_seat))
            elif person.get("status") == "waitlisted":
                batch.delete(self._place(self._reg(person)))
        seat = self._lowest_free(reg) if reg.seated else None
        if seat:
            batch.create(self._seat(reg.event_id, reg.role, seat), seat_doc(reg))
        elif reg.status == "waitlisted":
            batch.create(self._place(reg), {"reg": reg.id, "user": reg.user_id})
        if not reg.active:
            batch.delete(ref, option=self._if_same(person))
        elif person is not None:
            batch.update(ref, person_doc(reg, seat), option=self._if_same(person))
        else:
            batch.create(ref, person_doc(reg, seat))
        try:
            batch.commit(**self.fs.call)
        except conflicts():
            if seat:
                self._taken.setdefault((reg.event_id, reg.role), set()).add(seat)
            return person is None and ref.get(**self.fs.call).exists
        return True
