"""The outbox and its ledger in Firestore, shared by every instance (STATE_BACKEND=firestore).

Every accepted row is committed to Firestore before the user is answered, by whichever instance
took it. One instance at a time, the holder of a lease document, writes what waits to the
spreadsheet. Each instance follows the rows still waiting through a Firestore listener, so its
merged view of the bot's sheets holds every instance's rows within moments, and nothing is
polled while the bot is idle.

The interface is storage.outbox.Outbox: seqs are this process's own numbers, given in the order
in which it learnt of each entry.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from storage.backend import BackendBusy
from storage.firestore.client import Firestore, errors
from storage.firestore.lease import FlushLease
from storage.firestore.ledger import FirestoreLedger
from storage.firestore.records import (
    ENTRIES,
    FORGET_SECONDS,
    LEDGER,
    Known,
    LedgerKnown,
)
from storage.outbox import Entry

log = logging.getLogger(__name__)
BATCH = 400  # writes per commit
UNKNOWN_SECONDS = 120.0  # an entry whose commit failed and is not there by then never landed
REOPEN_SECONDS = 2.0  # the listener's stream is reopened at most this often after a failure


class FirestoreOutbox(FlushLease, FirestoreLedger):
    """The outbox, the ledger, the flush lease and the quota, in Firestore."""

    def __init__(self, fs: Firestore, clock: Callable[[], float] = time.time) -> None:
        self.fs = fs
        self.clock = clock
        self.path = fs.describe()
        self.errors = errors()
        self._lock = threading.RLock()
        self._known: dict[str, Known] = {}
        self._order: list[Known] = []  # by seq
        self._waiting: set[str] = set()  # ids of the entries that wait, as this process knows
        self._seq = 0
        self._watch: Any = None
        self._watch_pid = 0
        self._heard_once = threading.Event()  # the listener's first report has come
        self._lease: dict[str, Any] = {}  # the lease as this process last read or wrote it
        self._lease_lock = threading.RLock()  # one thread at a time reads or writes it
        self._flushing = threading.Lock()  # held from take_lease to release_lease
        self._attempting: set[str] = set()
        self._ledger: dict[tuple[str, str], LedgerKnown] | None = None
        self._ledger_at = 0.0  # when it was last read
        self._ledger_fresh = False  # another holder may have changed it since
        self.on_adopt: list[Callable[[str, dict[str, Any]], None]] = []  # organizer edits kept
        self._me = ("", 0)
        self._written_version = -1.0  # Store.settle: the backend's token after our last write
        self._unknown: dict[str, float] = {}  # entries whose commit failed: id -> when (it may
        # have landed; the listener may not report it, e.g. while its stream is down)

    def instance(self) -> str:
        """This outbox in this process, as the lease document names its holder."""
        if self._me[1] != os.getpid():
            self._me = (f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}", os.getpid())
        return self._me[0]

    # ---- following the entries that wait ------------------------------------------------------
    def listen(self) -> None:
        """Start (or restart) the listener on the entries that wait, and wait (within the
        timeout) for its first report: no view is built without the rows that wait."""
        with self._lock:
            if self._watch is None or self._watch_pid != os.getpid() \
                    or not self._watch.is_active:
                from google.cloud.firestore import FieldFilter

                query = self.fs.col(ENTRIES).where(filter=FieldFilter("pending", "==", True))
                query._comparator = _by_id  # the library's own re-sorts every entry per change
                self._heard_once.clear()  # and its first report settles every entry known
                self._watch, self._watch_pid = query.on_snapshot(self._heard), os.getpid()
                _calm(self._watch)
        if not self._heard_once.wait(self.fs.config.timeout):
            raise _no_answer("the listener on the outbox did not report in time")

    def close(self) -> None:
        """Stop the listener."""
        with self._lock:
            if self._watch is not None:
                self._watch.unsubscribe()
                self._watch = None

    def _heard(self, docs: list[Any], changes: list[Any], read_time: Any) -> None:
        """The listener's report: the entries that wait as of read_time. What this process
        believes follows it, except where this process knows better (it wrote them since)."""
        with self._lock:
            waiting = {snap.id for snap in docs}
            fresh = sorted((d for d in docs if d.id not in self._known),
                           key=lambda d: (d.create_time, d.id)) if waiting - self._known.keys() else []
            for snap in fresh:
                self._insert(snap.id, snap.to_dict(), commit=snap.create_time)
            for change in changes:  # what changed since the last report (attempts)
                known = self._known.get(change.document.id)
                if known and change.type.name in ("ADDED", "MODIFIED"):
                    known.attempts = int(change.document.to_dict().get("attempts") or 0)
            for entry_id in waiting - self._waiting:  # it waits still: a report taken apart
                known = self._known[entry_id]
                if not (known.written_at and known.written_at > read_time):
                    self._waiting.add(entry_id)
                    known.done_at = None
            for entry_id in list(self._waiting - waiting):
                known = self._known[entry_id]
                if known.commit is None:  # its time unknown: the next report decides
                    known.commit = read_time
                elif known.commit <= read_time:
                    self._written(known)  # written by the lease holder (maybe this process)
        self._heard_once.set()

    def _written(self, known: Known, commit: Any = None) -> None:
        self._waiting.discard(known.id)
        known.done_at = known.done_at or self.clock()
        known.written_at = commit

    def _insert(self, entry_id: str, data: dict[str, Any], commit: Any) -> Known:
        self._seq += 1
        known = Known(self._seq, entry_id, data["sheet"], data["op"], data["row_id"],
                       json.loads(data["payload"]), float(data["created"]),
                       int(data.get("attempts") or 0), data.get("done_at"), commit,
                       bool(data.get("ledger")), bool(data.get("repair")))
        self._known[entry_id] = known
        self._order.append(known)
        if known.pending:
            self._waiting.add(entry_id)
        self._fold(known)
        return known

    def _forget_old(self) -> None:
        """Drop written entries no copy of the sheets can still lack."""
        cutoff = self.clock() - FORGET_SECONDS
        keep = [k for k in self._order if k.pending or (k.done_at or 0) >= cutoff]
        if len(keep) < len(self._order):
            self._order = keep
            self._known = {k.id: k for k in keep}

    # ---- writes ---------------------------------------------------------------------------------
    def add(self, sheet: str, row: dict[str, Any], *, ledger: bool = False) -> None:
        """Queue a new row; it must carry an 'id'. With ledger, remember it as the bot's."""
        self._commit_one(self.stage(sheet, "append", str(row["id"]), row, ledger=ledger))

    def update(self, sheet: str, row_id: str, fields: dict[str, Any], *,
               ledger: bool = False) -> None:
        """Queue new values for the row whose id is row_id (and remember them, with ledger)."""
        self._commit_one(self.stage(sheet, "update", row_id, fields, ledger=ledger))

    def _commit_one(self, item: Staged) -> None:
        """Commit one entry; when a retry finds it there, the first try landed."""
        from google.api_core.exceptions import AlreadyExists

        try:
            self.commit([item])
        except AlreadyExists:
            snap = self.fs.doc(ENTRIES, item.id).get(**self.fs.call)
            if not snap.exists:
                raise
            with self._lock:
                if item.id not in self._known:
                    self._insert(item.id, item.data, commit=snap.create_time)

    def stage(self, sheet: str, op: str, row_id: str, payload: dict[str, Any], *,
              ledger: bool, repair: bool = False) -> Staged:
        """An entry (and its ledger write) ready to go into a batch with other writes."""
        return Staged(self, sheet, op, row_id, payload, ledger, repair)

    def commit(self, staged: list[Staged], batch: Any = None) -> Any:
        """Commit staged entries (with whatever else the batch holds), then know them here;
        returns the commit time."""
        batch = batch or self.fs.batch()
        for item in staged:
            item.write(batch)
        try:
            batch.commit(**self.fs.call)
        except Exception:  # a timeout or a cancel: the batch may have landed all the same
            with self._lock:
                self._unknown.update((item.id, self.clock()) for item in staged)
            raise
        commit = batch.commit_time  # (a delete's own result has no time)
        with self._lock:
            for item in staged:
                if item.id not in self._known:  # the listener may have been quicker
                    self._insert(item.id, item.data, commit=commit)
        return commit

    # ---- reads for the merged view ----------------------------------------------------------------
    def first_unseen(self, when: float) -> int:
        """The lowest seq still waiting or written at or after `when`; one past the last seq
        when there is none."""
        self.listen()
        with self._lock:
            self._forget_old()
            seqs = [k.seq for k in self._order if k.pending or (k.done_at or 0) >= when]
            return min(seqs) if seqs else self._seq + 1

    def after(self, seq: int, sheet: str) -> list[Entry]:
        """Entries of one sheet with a seq greater than `seq`, in seq order."""
        with self._lock:
            start = bisect.bisect_right(self._order, seq, key=lambda k: k.seq)
            return [_entry(k) for k in self._order[start:] if k.sheet == sheet]

    def written_since(self, when: float) -> bool:
        """Whether an entry was written at or after `when`."""
        with self._lock:
            return any((k.done_at or 0) >= when for k in self._order)

    def has_pending(self) -> bool:
        """Whether any entry waits, as the listener last reported (and as the entries whose
        commit failed turn out to be)."""
        self.listen()
        self._look_up_unknown()
        with self._lock:
            return bool(self._waiting)

    def _look_up_unknown(self) -> None:
        """Look up the entries whose commit failed: one that landed waits here like any other,
        so that a row is not left unwritten when the listener misses it. One not there after
        UNKNOWN_SECONDS is forgotten; a lookup that fails is tried again next time."""
        with self._lock:
            ids = list(self._unknown)
        if not ids:
            return
        try:
            found = {snap.id: snap for snap in self.fs.client().get_all(
                [self.fs.doc(ENTRIES, i) for i in ids], **self.fs.call) if snap.exists}
        except self.errors:
            return
        with self._lock:
            for entry_id in ids:
                snap = found.get(entry_id)
                if snap is not None and entry_id not in self._known:
                    data = snap.to_dict()
                    if data.get("pending"):
                        self._insert(entry_id, data, commit=snap.create_time)
                if snap is not None or self.clock() - self._unknown[entry_id] > UNKNOWN_SECONDS:
                    del self._unknown[entry_id]

    def describe(self) -> str:
        """The Firestore database and namespace."""
        return self.path

    def health(self) -> tuple[int, float]:
        """(number of entries waiting, age in seconds of the oldest one)."""
        with self._lock:
            waiting = [self._known[i].created for i in self._waiting]
        return len(waiting), (self.clock() - min(waiting)) if waiting else 0.0

    # ---- the flush ----------------------------------------------------------------------------------
    def pending(self, limit: int = 5000) -> list[Entry]:
        """Entries waiting, oldest first; one a write may have landed counts an attempt more."""
        with self._lock:
            waiting = sorted((self._known[i] for i in self._waiting), key=lambda k: k.seq)[:limit]
            return [_entry(k, int(k.id in self._attempting)) for k in waiting]

    def mark_attempt(self, seqs: list[int]) -> None:
        """Record in the lease that a write of these entries is being tried; raise BackendBusy
        when the lease has gone to another instance (it flushes them)."""
        self._attempting |= set(self._ids(seqs))
        if not self._lease_write({"attempting": sorted(self._attempting)}):
            raise BackendBusy("the flush lease went to another instance")

    def mark_done(self, seqs: list[int]) -> None:
        """Record that the spreadsheet holds these entries."""
        ids, now = self._ids(seqs), self.clock()
        for start in range(0, len(ids), BATCH):
            batch = self.fs.batch()
            for entry in ids[start:start + BATCH]:
                batch.update(self.fs.doc(ENTRIES, entry), {"pending": False, "done_at": now})
            batch.commit(**self.fs.call)
            with self._lock:
                for entry in ids[start:start + BATCH]:
                    if entry in self._known:
                        self._written(self._known[entry], batch.commit_time)
        self._attempting -= set(ids)
        self._lease_write({"attempting": sorted(self._attempting)})

    def _ids(self, seqs: list[int]) -> list[str]:
        wanted = set(seqs)
        with self._lock:
            return [k.id for k in self._order if k.seq in wanted]

    def purge(self, keep_seconds: float = 86400) -> None:
        """Delete written entries older than keep_seconds."""
        from google.cloud.firestore import FieldFilter

        with self._lock:
            self._forget_old()
        old = self.fs.col(ENTRIES).where(filter=FieldFilter(
            "done_at", "<", self.clock() - keep_seconds)).limit(BATCH).get(**self.fs.call)
        if old:
            batch = self.fs.batch()
            for snap in old:
                batch.delete(snap.reference)
            batch.commit(**self.fs.call)


class Staged:
    """One entry, and its ledger write, before they are committed."""

    def __init__(self, outbox: FirestoreOutbox, sheet: str, op: str, row_id: str,
                 payload: dict[str, Any], ledger: bool, repair: bool) -> None:
        now = outbox.clock()
        self.outbox, self.sheet, self.op, self.row_id = outbox, sheet, op, row_id
        self.id = f"{int(now * 1000):013d}-{os.urandom(6).hex()}"
        self.ledger, self.repair = ledger, repair
        self.payload = payload
        self.precondition: LedgerKnown | None = None
        self.data = {"sheet": sheet, "op": op, "row_id": row_id, "created": now,
                     "payload": json.dumps(payload, ensure_ascii=False, default=str),
                     "attempts": int(repair and op == "append"),  # it may be there: check ids
                     "pending": True, "done_at": None, "ledger": ledger, "repair": repair}

    def write(self, batch: Any) -> None:
        """Put the entry and its ledger write into the batch."""
        fs = self.outbox.fs
        batch.create(fs.doc(ENTRIES, self.id), self.data)
        if not self.ledger:
            return
        from google.cloud.firestore import Increment

        ref = fs.doc(LEDGER, self.sheet, self.row_id)
        values = {"sheet": self.sheet, "row_id": self.row_id, "entry": self.id,
                  "written": self.data["created"], "rewrites": Increment(1) if self.repair else 0}
        if self.payload:  # an empty map would replace the fields kept
            values["fields"] = self.payload
        if self.op == "append":
            values["whole"] = True
        if self.precondition is not None:
            batch.update(ref, _dotted(values),
                         option=fs.option(last_update_time=self.precondition.updated))
        else:
            batch.set(ref, values, merge=True)


def _dotted(values: dict[str, Any]) -> dict[str, Any]:
    """update() takes field paths: the row's fields one by one, so that the rest stay."""
    from google.cloud.firestore_v1.field_path import FieldPath

    out = {k: v for k, v in values.items() if k != "fields"}
    out.update({FieldPath("fields", k).to_api_repr(): v for k, v in values.get("fields", {}).items()})
    return out


def _by_id(a: Any, b: Any) -> int:
    """The listener's order of entries: by document id. The library's comparator, generic over
    any query's order, costs most of an instance's CPU during a burst; any total order does."""
    return (a.id > b.id) - (a.id < b.id)


def _calm(watch: Any) -> None:
    """The library reopens a listener's stream at once each time it fails, with no backoff:
    while Firestore is unreachable that is thousands of streams, and their threads, a minute.
    Let it reopen at most once per REOPEN_SECONDS (its own throttle, off by default)."""
    import datetime

    from google.api_core.bidi import _Throttle

    rpc = getattr(watch, "_rpc", None)
    if rpc is not None and hasattr(rpc, "_reopen_throttle"):
        rpc._reopen_throttle = _Throttle(access_limit=1,
                                         time_window=datetime.timedelta(seconds=REOPEN_SECONDS))


def _no_answer(why: str) -> Exception:
    from google.api_core.exceptions import DeadlineExceeded

    return DeadlineExceeded(why)


def _entry(known: Known, extra_attempts: int = 0) -> Entry:
    return Entry(known.seq, known.sheet, known.op, known.row_id, known.payload, known.created,
                 known.done_at, known.attempts + extra_attempts)
