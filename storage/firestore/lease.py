"""The flush lease and the write quota of a FirestoreOutbox: one instance at a time flushes
to the spreadsheet (the lease document names it), and every instance counts its calls against
the sheet's per-minute quota in one shared document."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from storage.firestore.client import Firestore, conflicts
from storage.firestore.records import ENTRIES, LEASE_SECONDS, Known

log = logging.getLogger(__name__)
QUOTA_TRIES = 20  # instances counting the same minute at once try again


class FlushLease:
    """The lease and the quota; FirestoreOutbox provides the state they share."""

    fs: Firestore
    clock: Callable[[], float]
    _lock: threading.RLock
    _lease: dict[str, Any]
    _lease_lock: threading.RLock
    _flushing: threading.Lock
    _attempting: set[str]
    _known: dict[str, Known]
    _waiting: set[str]
    _ledger_fresh: bool
    _written_version: float
    instance: Callable[[], str]
    _insert: Callable[..., Known]

    # ---- the lease ----------------------------------------------------------------------------------
    def take_lease(self, seconds: float, *, ignore_schedule: bool = False) -> bool:
        """Claim the right to flush: one flusher across instances and, within this process,
        one thread (until release_lease); at most once per interval unless ignore_schedule."""
        if not self._flushing.acquire(blocking=False):
            return False  # another thread of this process is flushing
        try:
            taken = self._own_lease(seconds, ignore_schedule)
        except BaseException:
            self._flushing.release()
            raise
        if not taken:
            self._flushing.release()
        return taken

    def _own_lease(self, seconds: float, ignore_schedule: bool) -> bool:
        """Hold the lease document: the holder keeps it while it renews it; a holder that stops
        (kill -9) frees it LEASE_SECONDS after its last renewal. A lease held elsewhere is not
        read again before it may have ended."""
        with self._lease_lock:
            return self._own_lease_locked(seconds, ignore_schedule)

    def _own_lease_locked(self, seconds: float, ignore_schedule: bool) -> bool:
        now, me = self.clock(), self.instance()
        if self.held_elsewhere():
            return False
        lease = self._lease
        if not (lease.get("holder") == me and lease.get("until", 0) > now):
            snap = self.fs.doc("meta", "lease").get(**self.fs.call)
            lease = self._lease = {**(snap.to_dict() or {}), "updated": snap.update_time}
        mine = lease.get("holder") == me
        if lease.get("until", 0) > now and not mine:
            return False
        if not ignore_schedule and lease.get("next_flush", 0) > now:
            return False
        taken = {"holder": me, "until": now + min(seconds, LEASE_SECONDS),
                 "next_flush": lease.get("next_flush", 0), "attempting": lease.get("attempting", [])}
        if not self._lease_write_locked(taken, exists=lease.get("updated") is not None):
            return False
        if not mine:
            log.info("took the flush lease (last held by %s)", lease.get("holder") or "nobody")
            self._take_over(taken["attempting"])
        return True

    def _take_over(self, attempting: list[str]) -> None:
        """A new holder: every entry that waits is read, and each counts as one the last holder
        may have written (its listener may not have heard yet what was written), so that the
        first flush checks the sheet's ids before it appends anything."""
        from google.cloud.firestore import FieldFilter

        waiting = self.fs.col(ENTRIES).where(filter=FieldFilter("pending", "==", True)).get(
            **self.fs.call)
        with self._lock:
            for snap in sorted(waiting, key=lambda s: (s.create_time, s.id)):
                if snap.id not in self._known:
                    self._insert(snap.id, snap.to_dict(), commit=snap.create_time)
            self._attempting = set(attempting) | self._waiting
            self._ledger_fresh = False  # what the last holder wrote is read when compared

    def release_lease(self, next_flush_in: float) -> None:
        """End this flush: keep the lease (renewed) and say when the next flush may start."""
        try:
            now = self.clock()
            self._lease_write({"until": now + LEASE_SECONDS, "next_flush": now + next_flush_in})
        finally:
            self._flushing.release()

    def note_written(self, version: float) -> None:
        """The backend's change token after this instance's last write: kept in memory, since
        instances that share Firestore write to Google Sheets, which has no such token."""
        self._written_version = version

    def written_version(self) -> float:
        """What note_written recorded last in this process (-1: nothing)."""
        return self._written_version

    def give_up_lease(self) -> None:
        """Let another instance take the lease at once (at shutdown)."""
        if self.holds_lease():
            self._lease_write({"until": 0.0, "holder": ""})

    def holds_lease(self) -> bool:
        """Whether this process holds the lease, as it last wrote it."""
        return self._lease.get("holder") == self.instance() and \
            self._lease.get("until", 0) > self.clock()

    def repairs_here(self) -> bool:
        """Only the lease holder compares the sheet with the ledger; a lease nobody holds
        (the bot was idle) is taken for it."""
        return self.holds_lease() or self._own_lease(LEASE_SECONDS, ignore_schedule=True)

    def held_elsewhere(self) -> bool:
        """Whether another instance holds the lease (it flushes what waits here too)."""
        lease = self._lease
        return lease.get("until", 0) > self.clock() and lease.get("holder") not in (
            "", None, self.instance())

    def _lease_write(self, fields: dict[str, Any], exists: bool = True) -> bool:
        """Write the lease if nobody else has since this process last read or wrote it (one
        thread at a time: the document's update time is the precondition)."""
        with self._lease_lock:
            return self._lease_write_locked(fields, exists)

    def _lease_write_locked(self, fields: dict[str, Any], exists: bool) -> bool:
        ref, known = self.fs.doc("meta", "lease"), self._lease.get("updated")
        batch = self.fs.batch()
        if exists and known is not None:
            batch.update(ref, fields, option=self.fs.option(last_update_time=known))
        else:
            batch.create(ref, fields)
        try:
            results = batch.commit(**self.fs.call)
        except conflicts() as err:
            log.info("the flush lease changed hands: %s", type(err).__name__)
            self._lease = {}
            return False
        self._lease = {**self._lease, **fields, "updated": results[0].update_time}
        return True

    # ---- the quota ----------------------------------------------------------------------------------
    def take_quota(self, kind: str, limit: int, window: float) -> bool:
        """Count one API call of this kind, across instances, if fewer than limit were made in
        the window."""
        ref = self.fs.doc("meta", f"quota-{kind}")
        for _ in range(QUOTA_TRIES):
            now = self.clock()
            snap = ref.get(**self.fs.call)
            calls = [t for t in (snap.get("calls") if snap.exists else []) if t > now - window]
            if len(calls) >= limit:
                return False
            batch = self.fs.batch()
            if snap.exists:
                batch.update(ref, {"calls": [*calls, now]},
                             option=self.fs.option(last_update_time=snap.update_time))
            else:
                batch.create(ref, {"calls": [now]})
            try:
                batch.commit(**self.fs.call)
                return True
            except conflicts():
                time.sleep(random.uniform(0.005, 0.05))
        return False
