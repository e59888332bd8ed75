"""The Store: one interface over both backends: the read cache of the sheets merged with the rows
still in the outbox, and the ledger comparison after each read (writes: storage.flusher)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.schema import ORGANIZER_EDITABLE, Problem, Registration, Workbook, parse_workbook
from domain.seats import Seats
from storage.backend import Backend, BackendError, Keeper
from storage.flusher import BACKOFF_CAP, Flusher, token_key
from storage.ledger import Repairs, compare, sheet_ids, sheet_rows
from storage.local.seats import LockedSeats
from storage.outbox import Entry, Outbox
from storage.sheets import snapshot

log = logging.getLogger(__name__)

COPY_LAG_SECONDS = 2.0  # a copy read this soon after a write may not hold it yet
READ_RETRY_CAP = 30.0


class Store(Flusher):
    """Cached reads of the organizer sheets; writes that go through the outbox."""

    def __init__(
        self,
        backend: Backend,
        outbox: Outbox,
        *,
        cache_seconds: float = 60.0,
        check_seconds: float = 1.0,
        flush_interval: float = 1.0,
        backoff_cap: float = BACKOFF_CAP,
        clock: Callable[[], float] = time.time,
        snapshot: Keeper | None = None,
    ) -> None:
        self.backend = backend
        self.outbox = outbox
        self.cache_seconds = cache_seconds
        self.check_seconds = check_seconds
        self.flush_interval = flush_interval
        self.backoff_cap = backoff_cap
        self.clock = clock
        self._org: Workbook | None = None
        self._token: object | None = None
        self._loaded_at = 0.0
        self._checked_at = 0.0
        self._recheck_at = float("inf")  # read again then: the copy was too new to compare
        self.snapshot = snapshot
        self._snapshot_text = ""
        self.from_snapshot = False  # answering from the last good copy saved in DATA_DIR
        self._read_failures = 0
        self._retry_at = 0.0
        self._refreshing = threading.Lock()
        self._failures = 0
        self._last_try = 0.0
        self._merging = threading.RLock()  # a reload listener may ask for the view too
        self._merges: dict[str, _Merge] = {}
        self.on_reload: list[Callable[[Workbook], None]] = []  # called with each new copy
        # called with (before, after) when an organizer changed a registration's status by hand
        self.on_status_edit: list[Callable[[Registration, Registration], None]] = []
        self.seats: Seats = LockedSeats(self)  # FirestoreSeats when instances share state

    # ---- reads -------------------------------------------------------------------------
    def workbook(self) -> Workbook:
        """The parsed sheets, from the cache while it is fresh."""
        if self._org is None:
            if self.clock() >= self._retry_at:  # a cold start while the sheet fails: not on
                self._refresh(wait=True)         # every request, but at the retry schedule
        elif self._stale() and not self._refreshing.locked():
            # keep answering from the current copy while a thread reads the new one
            threading.Thread(target=self._refresh, args=(False,), daemon=True).start()
        if self._org is None:
            return Workbook(problems=[Problem("-", 0, "", "スプレッドシートを読めません")])
        return self._org

    def follow(self) -> None:
        """Where the backend has a cheap change token (the workbook's time and size), start
        reading an organizer's save without waiting for a request, so that the first question
        after it already gets the new answers (the flusher thread calls this each second). A
        backend without one (Google Sheets) is read again on its TTL, at a request."""
        if self._org is not None and self.backend.version() is not None:
            self.workbook()

    def settle(self) -> None:
        """Before a seat decision: when someone other than the bot saved the sheets since the
        copy was read (seen where the backend has a cheap change token: the workbook's time and
        size), read them first, so that an organizer's edit counts at once. The bot's own saves
        need no read: what they wrote is in the outbox, which every decision counts."""
        token = self.backend.version()
        if token is None or self._org is None or token == self._token or \
                token_key(token) == self.outbox.written_version():
            return
        self._refresh(wait=True, force=True)

    def adopt_own_save(self, before: Any, token: Any) -> None:
        """After this process saved the workbook from the copy it holds (`before` is that
        copy's token), take the new token as this copy's: the save added only what the outbox
        holds, which every view counts, so the whole workbook need not be read and parsed
        again. A save from another version (an organizer saved meanwhile) is read as usual."""
        if before is None or before != self._token or not self._refreshing.acquire(blocking=False):
            return
        try:
            if self._token == before:
                self._token = token
        finally:
            self._refreshing.release()

    @property
    def loaded(self) -> bool:
        """Whether a copy of the sheets has been read."""
        return self._org is not None

    def reload(self) -> Workbook:
        """Read the spreadsheet now, whatever the cache says."""
        self._refresh(wait=True, force=True)
        return self.workbook()

    def _stale(self) -> bool:
        now = self.clock()
        if now - self._checked_at < self.check_seconds or now < self._retry_at:
            return False
        self._checked_at = now
        token = self.backend.version()
        if token is None:
            return now - self._loaded_at >= self.cache_seconds
        return token != self._token or now >= self._recheck_at

    def _refresh(self, wait: bool, force: bool = False) -> None:
        if not self._refreshing.acquire(blocking=wait):
            return  # another thread is reading; keep answering from the last copy
        try:
            if wait and not force and self._org is not None:
                return  # loaded by the thread we waited for
            started = self.clock()
            token = self.backend.version()
            raw = self.backend.read()
            org = parse_workbook(raw)
            unsettled = self._repair(raw, org, started)  # before anyone counts seats from it
            self._recheck_at = started + COPY_LAG_SECONDS + self.check_seconds if unsettled \
                else float("inf")
            self._org, self._token, self._loaded_at = org, token, started
            self._checked_at = started
            self._keep(raw, started)
        except BackendError as err:
            if not self._read_failed(err):
                return
        finally:
            self._refreshing.release()
        self._announce(self._org)

    def _keep(self, raw: dict[str, list[list[Any]]], read_at: float) -> None:
        """Save the copy just read as the last good one, when it differs from the saved one."""
        if self.from_snapshot:
            log.info("the sheets can be read again: no longer answering from the saved copy")
        self.from_snapshot, self._read_failures, self._retry_at = False, 0, 0.0
        if self.snapshot is None:
            return
        text = snapshot.dumps(raw)
        if text != self._snapshot_text:
            try:
                self.snapshot.save(text, read_at)
            except (OSError, *self.outbox.errors) as err:  # the next read saves it again
                log.warning("could not save the last good copy of the sheets: %s", err)
                return
            self._snapshot_text = text

    def _read_failed(self, err: BackendError) -> bool:
        """Keep the copy in memory; with none yet (a cold start), answer from the snapshot
        (True then). Reading is tried again after 1, 2, 4 ... 30 s."""
        self._read_failures += 1
        self._retry_at = self.clock() + min(READ_RETRY_CAP, 2.0 ** (self._read_failures - 1))
        if self._org is not None:
            log.warning("keeping the last good copy of the sheets: %s", err)
            return False
        saved = self.snapshot.load() if self.snapshot else None
        if saved is None:
            log.warning("the sheets cannot be read and no copy of them is kept: %s", err)
            return False
        raw, read_at = saved
        self._org, self._token, self._loaded_at = parse_workbook(raw), None, read_at
        self.from_snapshot = True
        log.warning("the sheets cannot be read (%s); answering from the copy saved in %s, read "
                    "%.0f s ago, until they can", err, self.snapshot.describe(),
                    self.clock() - read_at)
        return True

    def _repair(self, raw: dict[str, list[list[Any]]], org: Workbook, read_at: float) -> bool:
        """Write again the rows the bot wrote that this copy lacks or has wrong (see
        storage.ledger); their entries then count in every merge built from this copy. True
        when rows written just before the read could not be compared yet."""
        unsettled = self.outbox.written_since(read_at - COPY_LAG_SECONDS)
        if not self.outbox.repairs_here():
            return unsettled  # another instance compares (Firestore: the lease holder)
        for repairs in ledger_repairs(self.outbox, raw, org, read_at):  # no lock held here
            edited = self._status_edits(repairs)
            if repairs.lost or repairs.adopt or repairs.matched:
                self.outbox.repair(repairs)  # the write lock, only when there is work
            self._tell(edited)
            if repairs.lost or repairs.stuck:
                log.warning("the sheet lost rows the bot wrote; writing them again: %s",
                            repairs.summary())
            elif repairs.adopt:
                log.info("kept organizer edits: %s", repairs.summary())
        return unsettled

    def _status_edits(self, repairs: Repairs) -> list[tuple[Registration, Registration]]:
        """(before, after) of each registration whose status an organizer changed, as the copy
        in use had it (none on the first read: nothing to compare with)."""
        if repairs.sheet != "registrations" or not repairs.adopt or self._org is None:
            return []
        before = {r.id: r for r in self.registrations()}
        return [(before[row_id], dataclasses.replace(before[row_id], status=str(fields["status"])))
                for row_id, fields in repairs.adopt
                if row_id in before and str(fields.get("status", before[row_id].status))
                != before[row_id].status]

    def _tell(self, edited: list[tuple[Registration, Registration]]) -> None:
        for pair in edited:
            for listener in self.on_status_edit:
                try:
                    listener(*pair)
                except Exception:  # a listener's bug must not stop the sheets being read
                    log.exception("a listener of organizer edits failed")

    def _announce(self, org: Workbook) -> None:
        """Tell the listeners (e.g. the FAQ index) about a new copy; their failure is logged."""
        for listener in self.on_reload:
            try:
                listener(org)
            except Exception:  # a listener's bug must not stop the sheets being read
                log.exception("a listener of sheet reloads failed")

    def rows(self, sheet: str) -> list[dict[str, Any]]:
        """A bot sheet's rows (registrations, feedback, attendance) merged with the outbox.

        The merge is kept between calls; each call reads only entries queued since the last.
        """
        with self._merging:
            return list(self._merged(sheet).rows.values())

    def registrations(self, *, event: str | None = None, user: str | None = None
                      ) -> list[Registration]:
        """Registrations in the sheet merged with those still in (or just out of) the outbox;
        given an event or a user, only theirs, from an index (the work of a request does not
        grow with the rows of other people and events)."""
        with self._merging:
            merge = self._merged("registrations")
            if event is None and user is None:
                return list(merge.rows.values())
            key = ("user", user) if user is not None else ("event", event)
            found = (merge.rows[row_id] for row_id in merge.index.get(key, ()))
            return [r for r in found if (event is None or r.event_id == event)
                    and (user is None or r.user_id == user)]

    def _merged(self, sheet: str) -> _Merge:
        org = self.workbook()
        merge = self._merges.get(sheet)
        if merge is None or merge.base is not org:
            start = self.outbox.first_unseen(self._loaded_at - COPY_LAG_SECONDS) - 1
            merge = _Merge(org, _base_rows(org, sheet), start)
            self._merges[sheet] = merge
            if sheet == "registrations":
                for row_id in merge.rows:
                    merge.add_to_index(row_id)
        overlay = _overlay_registration if sheet == "registrations" else _overlay
        for entry in self.outbox.after(merge.seq, sheet):
            overlay(merge.rows, entry)
            merge.seq = entry.seq
            if sheet == "registrations" and entry.row_id in merge.rows:
                merge.add_to_index(entry.row_id)
        return merge

def ledger_repairs(outbox: Outbox, raw: dict[str, list[list[Any]]], org: Workbook,
                   read_at: float) -> list[Repairs]:
    """For each sheet the ledger knows, what a copy read at read_at lacks of the rows the bot
    wrote; rows written too recently for that copy to hold them are not compared."""
    settled = outbox.first_unseen(read_at - COPY_LAG_SECONDS)
    found = []
    for sheet in outbox.ledger_sheets():
        ids = sheet_ids(raw, sheet)
        if ids is not None:
            found.append(compare(sheet, ids, sheet_rows(org, sheet), outbox.ledger(sheet, settled)))
    return found


@dataclass
class _Merge:
    """One bot sheet as the cached copy had it, plus the outbox entries applied since.

    Registrations are kept as Registration objects, other sheets as dicts, by id.
    """

    base: Workbook
    rows: dict[str, Any]
    seq: int
    # registrations: ("event", id) and ("user", id) -> their row ids, in the order first seen
    index: dict[tuple[str, str], dict[str, None]] = dataclasses.field(default_factory=dict)

    def add_to_index(self, row_id: str) -> None:
        reg = self.rows[row_id]
        for key in (("event", reg.event_id), ("user", reg.user_id)):
            self.index.setdefault(key, {})[row_id] = None


def _base_rows(org: Workbook, sheet: str) -> dict[str, Any]:
    if sheet == "registrations":
        return {r.id: r for r in org.registrations}
    return {r["id"]: dict(r) for r in org.bot_rows.get(sheet, []) if r.get("id")}


_REG_FIELDS = {f.name for f in dataclasses.fields(Registration)}


def _values(entry: Entry) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in entry.payload.items()}


def _overlay(merged: dict[str, Any], entry: Entry) -> None:
    if entry.op == "append":  # a row the sheet holds already keeps the organizer's edits
        kept = {k: v for k, v in merged.get(entry.row_id, {}).items()
                if k in ORGANIZER_EDITABLE.get(entry.sheet, ()) and v}
        merged[entry.row_id] = {**_values(entry), **kept}
    elif entry.row_id in merged:
        merged[entry.row_id] = {**merged[entry.row_id], **_values(entry)}


def _overlay_registration(merged: dict[str, Any], entry: Entry) -> None:
    values = {k: v for k, v in _values(entry).items() if k in _REG_FIELDS}
    if entry.op == "append":
        merged[entry.row_id] = Registration(**values)
    elif entry.row_id in merged:
        merged[entry.row_id] = dataclasses.replace(merged[entry.row_id], **values)
