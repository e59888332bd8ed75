"""The write side of the Store: rows accepted into the outbox, and the flusher that writes what
waits to the spreadsheet, in one call per worksheet, at most once per flush interval, backing
off after failures. Whichever process holds the outbox's lease flushes."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from domain.schema import COLUMNS, read_back
from storage.backend import Backend, BackendBusy, BackendError, SheetChanges
from storage.outbox import Entry, Outbox

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0  # a backstop for a holder that hangs; a dead holder frees it at once
DRAIN_RETRY_SECONDS = 1.0
BATCH_ROWS = 100  # a flush waits for this many rows...
GATHER_SECONDS = 3.0  # ...or for the oldest waiting row to be this old (fewer, fuller appends)
BACKOFF_CAP = 64.0
SLOW_SAVE_SECONDS = 0.25  # a save this slow (a large workbook) spaces out the next one:
SPACING_FACTOR = 4.0  # after a save that took d seconds, the next waits 4 d (saving <= 20%)...
SPACING_CAP = 10.0  # ...but never more than this


class Flusher:
    """Writes through the outbox. The Store is one; it sets these attributes."""

    backend: Backend
    outbox: Outbox
    clock: Callable[[], float]
    adopt_own_save: Callable[[Any, Any], None]
    flush_interval: float
    backoff_cap: float
    _failures: int
    _last_try: float

    def add(self, sheet: str, row: dict[str, Any]) -> None:
        """Accept a new row: durable in the outbox at once, in the sheet at the next flush."""
        columns = COLUMNS.get(sheet) or tuple(row)  # answers_<survey>: the row's own keys
        self.outbox.add(sheet, {k: row.get(k, "") for k in columns}, ledger=read_back(sheet))

    def update(self, sheet: str, row_id: str, fields: dict[str, Any]) -> None:
        """Accept new values for the row with this id."""
        self.outbox.update(sheet, row_id, fields, ledger=read_back(sheet))

    def flush(self, *, now: bool = False) -> int:
        """Write what waits in the outbox, if no other flusher is at it and one is due (now:
        whatever the backoff schedule says)."""
        if not self.outbox.take_lease(LEASE_SECONDS, ignore_schedule=now):
            return 0
        next_in = self.flush_interval
        try:
            started = time.monotonic()
            written = self._write_pending()
            self._failures = 0
            took = time.monotonic() - started  # rows keep landing in the outbox at once;
            if took >= SLOW_SAVE_SECONDS:  # only the saves of a large workbook are spaced out
                next_in = max(next_in, min(SPACING_CAP, SPACING_FACTOR * took))
            return written
        except BackendBusy as err:
            log.info("writes wait: %s", err)
            next_in = 2.0
        except BackendError as err:
            self._failures += 1
            next_in = min(self.backoff_cap, 2.0 ** self._failures) * random.uniform(0.5, 1.0)
            log.warning("writes wait %.1fs after a backend error: %s", next_in, err)
        finally:
            self.outbox.release_lease(next_in)
        return 0

    def flush_if_due(self) -> int:
        """Flush when rows wait, this process has not tried within the flush interval, and
        either a batch's worth waits or the oldest row has waited GATHER_SECONDS."""
        now = self.clock()
        if now - self._last_try < self.flush_interval:
            return 0
        self._last_try = now  # looked: the outbox is not asked again within the interval
        if not self.outbox.has_pending():
            return 0
        count, oldest = self.outbox.health()
        if count < BATCH_ROWS and oldest < GATHER_SECONDS:
            return 0
        return self.flush()

    def run_flusher(self, stop: threading.Event, every: float = 1.0) -> None:
        """Flush until stop is set, then once more (for the background thread); and follow an
        organizer's saves meanwhile (see follow)."""
        while not stop.wait(every):
            try:
                self.flush_if_due()
                self.follow()
            except Exception:  # the thread must outlive any one failure
                log.exception("flusher failed; it will try again")

    def follow(self) -> None:
        """Notice a save of the sheets between requests. Overridden by the Store."""

    def drain(self, seconds: float = 8.0) -> bool:
        """Flush until nothing waits or the time is up (at shutdown), ignoring the backoff
        schedule: after a failure the next try comes a second later. True when empty; with a
        shared outbox, stops when another instance holds the lease."""
        deadline = time.monotonic() + seconds
        while self.outbox.has_pending():
            if self.flush(now=True):
                continue
            if self.outbox.held_elsewhere():
                break  # another instance flushes what waits (the outbox is shared)
            left = deadline - time.monotonic()
            if left <= 0 or not self.outbox.has_pending():
                break
            time.sleep(min(DRAIN_RETRY_SECONDS, left))
        return not self.outbox.has_pending()

    def close(self) -> None:
        """Let another instance flush at once, and stop following the outbox (at exit)."""
        try:
            self.outbox.give_up_lease()
        except self.outbox.errors as err:  # the lease then runs out by itself
            log.warning("could not give up the flush lease: %s", type(err).__name__)
        self.outbox.close()

    def start_flusher(self, every: float = 1.0) -> threading.Event:
        """Start the background flusher; set the returned event to stop it."""
        stop = threading.Event()
        threading.Thread(target=self.run_flusher, args=(stop, every), daemon=True,
                         name="outbox-flusher").start()
        return stop

    def _write_pending(self) -> int:
        pending = self.outbox.pending()
        if not pending:
            return 0
        seqs = [e.seq for e in pending]
        changes = group_changes(pending)
        self.outbox.mark_attempt(seqs)
        self.backend.write(changes)
        token = self.backend.version()
        if token is not None:
            self.outbox.note_written(token_key(token))
            self.adopt_own_save(getattr(self.backend, "saved_from", None), token)
        self.outbox.mark_done(seqs)
        if random.random() < 0.01:
            self.outbox.purge()
        return len(pending)


def token_key(token: object) -> float:
    """A change token as a number the outbox can keep (exact below 2**53)."""
    return float(hash(token) & ((1 << 52) - 1))


def group_changes(entries: Sequence[Entry]) -> list[SheetChanges]:
    """Group queued entries by worksheet, keeping their order."""
    by_sheet: dict[str, SheetChanges] = {}
    for entry in entries:
        changes = by_sheet.setdefault(entry.sheet, SheetChanges(entry.sheet))
        changes.verify = changes.verify or entry.attempts > 0
        if entry.op == "append":
            changes.appends.append(entry.payload)
        else:
            changes.updates.append((entry.row_id, entry.payload))
    return list(by_sheet.values())
