"""The documents behind Firestore seats (see storage.firestore.seats), and what one process
learnt of them: the seats it saw taken, the events whose documents it seeded."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from domain.schema import Registration
from domain.seats import Draw
from storage.firestore.client import Firestore, doc_id
from storage.firestore.outbox import FirestoreOutbox

log = logging.getLogger(__name__)
TRIES = 60  # a step that keeps losing races gives up (Contended) rather than spin


class SeatDocs:
    """Where each document of an event's seats is, and the reads that find free seats."""

    outbox: FirestoreOutbox
    fs: Firestore
    view: Callable[[], list[Registration]]
    _seeded: set[str]
    _taken: dict[tuple[str, str], set[int]]
    _synced: set[str]
    _capacity: dict[tuple[str, str], int]
    _announced: dict[tuple[str, str], Draw]
    sync: Callable[[list[Registration]], None]

    def _event(self, event_id: str) -> Any:
        return self.fs.doc("events", event_id)

    def _person(self, event_id: str, user_id: str) -> Any:
        return self._event(event_id).collection("people").document(doc_id(user_id))

    def _seat(self, event_id: str, role: str, n: int) -> Any:
        return self._event(event_id).collection("seats").document(f"{role}-{n}")

    def _queue(self, event_id: str, role: str) -> Any:
        return self._event(event_id).collection(f"waitlist-{role}")

    def _place(self, reg: Registration) -> Any:
        return self._queue(reg.event_id, reg.role).document(
            doc_id(reg.queue or reg.created_at, reg.id))

    @staticmethod
    def _reg(person: Any, **changes: Any) -> Registration:
        return replace(Registration(**person.get("row")),
                       **{"status": person.get("status"), **changes})

    def _if_same(self, snap: Any) -> Any:
        return self.fs.option(last_update_time=snap.update_time)

    def _free_seat(self, event_id: str, role: str, capacity: int | None) -> int | None:
        """A seat number not known to be taken (0: no limit), or None when all are."""
        if capacity is None:
            return 0
        taken = self._taken.setdefault((event_id, role), set())
        free = [n for n in range(1, capacity + 1) if n not in taken]
        if not free and capacity and self._seats_taken(event_id, role) < capacity:
            taken.clear()
            taken |= self._seat_numbers(event_id, role)  # a seat came free: which one
            free = [n for n in range(1, capacity + 1) if n not in taken]
        return random.choice(free) if free else None  # a random one: fewer instances collide

    def _seats_query(self, event_id: str, role: str) -> Any:
        from google.cloud.firestore import FieldFilter

        return self._event(event_id).collection("seats").where(
            filter=FieldFilter("role", "==", role))

    def _seats_taken(self, event_id: str, role: str) -> int:
        found = self._seats_query(event_id, role).count().get(**self.fs.call)
        return int(found[0][0].value)

    def _seat_numbers(self, event_id: str, role: str) -> set[int]:
        return {int(s.id.rsplit("-", 1)[1])
                for s in self._seats_query(event_id, role).select([]).get(**self.fs.call)}

    def _ensure_seeded(self, event_id: str) -> None:
        """Before the first decision on an event: a document for every active registration the
        sheet already has, so that they hold their seats."""
        if event_id in self._seeded:
            return
        ref = self._event(event_id)
        snap = ref.get(**self.fs.call)
        if not (snap.exists and snap.get("seeded")):
            self.sync([r for r in self.view() if r.event_id == event_id])
            ref.set({"seeded": True}, merge=True, **self.fs.call)
        self._seeded.add(event_id)

    def _lowest_free(self, reg: Registration) -> int:
        key = (reg.event_id, reg.role)
        if key not in self._taken:
            self._taken[key] = self._seat_numbers(reg.event_id, reg.role)
        n = 1
        while n in self._taken[key]:
            n += 1
        self._taken[key].add(n)
        return n


def person_doc(reg: Registration, seat: int | None) -> dict[str, Any]:
    return {"reg": reg.id, "role": reg.role, "status": reg.status, "seat": seat or None,
            "row": dataclasses.asdict(reg)}


def seat_doc(reg: Registration) -> dict[str, Any]:
    return {"reg": reg.id, "user": reg.user_id, "role": reg.role}
