"""Durable queue of rows waiting to be written to the spreadsheet (SQLite in DATA_DIR), and the
ledger: what the bot last wrote to every row of the sheets it reads back."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage.ledger import LedgerRow, Repairs
from storage.local.sqlite import LocalDB, alive
from storage.outbox import Entry

log = logging.getLogger(__name__)
RESCUED = re.compile(r"\.rescued-\d{14}-\d+")  # what LocalDB names a rescued copy

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sheet TEXT NOT NULL,
    op TEXT NOT NULL,
    row_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    done_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entries_done ON entries (done_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS calls (kind TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS calls_at ON calls (kind, at);
CREATE TABLE IF NOT EXISTS ledger (
    sheet TEXT NOT NULL,
    row_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    seq INTEGER NOT NULL,
    whole INTEGER NOT NULL,
    rewrites INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sheet, row_id)
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('lease_until', 0), ('next_flush', 0),
    ('lease_pid', 0), ('written_version', -1);
"""


class SqliteOutbox:
    """The outbox in SQLite (one machine): every accepted row is committed here before the user
    is answered."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)  # local storage failing

    def __init__(self, path: Path, clock: Any = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._db = LocalDB(self.path, SCHEMA, synchronous="FULL")
        self._local = self._db.local
        self._conn = self._db.conn

    def take_back_rescued(self) -> int:
        """Queue again the unwritten entries, and keep the ledger rows, of outbox files rescued
        when the outbox was replaced under a running bot (LocalDB); each such file is then
        renamed `.taken`. Appends are queued as already tried, so the flush looks for their ids
        in the sheet first and nothing is written twice. Returns the entries taken back."""
        taken = 0
        for rescued in sorted(self.path.parent.glob(f"{self.path.name}.rescued-*")):
            if not RESCUED.fullmatch(rescued.name.removeprefix(self.path.name)):
                continue  # taken already, being taken, or SQLite's own side file
            claimed = rescued.with_name(f"{rescued.name}.{os.getpid()}.taking")
            try:
                rescued.rename(claimed)  # one process takes each file
            except FileNotFoundError:
                continue
            taken += self._take_back(claimed)
            claimed.rename(rescued.with_name(f"{rescued.name}.taken"))
        return taken

    def _take_back(self, rescued: Path) -> int:
        source = sqlite3.connect(f"file:{rescued}?mode=ro", uri=True)
        try:
            entries = source.execute("SELECT sheet, op, row_id, payload, created FROM entries "
                                     "WHERE done_at IS NULL ORDER BY seq").fetchall()
            ledger = source.execute("SELECT sheet, row_id, fields, whole FROM ledger").fetchall()
        finally:
            source.close()
        known = {(sheet, row_id): (fields, whole) for sheet, row_id, fields, whole in ledger}
        with self.transaction():
            conn = self._conn()
            seqs, taken = {}, 0
            for sheet, op, row_id, payload, created in entries:
                if conn.execute("SELECT 1 FROM entries WHERE sheet = ? AND "
                                "op = ? AND row_id = ? AND payload = ?",
                                (sheet, op, row_id, payload)).fetchone():
                    continue  # each worker rescues its own copy of the same file
                taken += 1
                seqs[sheet, row_id] = conn.execute(
                    "INSERT INTO entries (sheet, op, row_id, payload, created, attempts) "
                    "VALUES (?,?,?,?,?,1)", (sheet, op, row_id, payload, created)).lastrowid
            conn.executemany(  # rows this file knows nothing of (settled ones as seq 0)
                "INSERT OR IGNORE INTO ledger (sheet, row_id, fields, seq, whole) "
                "VALUES (?,?,?,?,?)", [(sheet, row_id, fields, seqs.get((sheet, row_id), 0), whole)
                                       for (sheet, row_id), (fields, whole) in known.items()])
        log.warning("took back %d unwritten rows from %s (the outbox was replaced under a "
                    "running bot)", taken, rescued)
        return taken

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write lock across threads and processes; nested use joins the outer one."""
        conn = self._conn()
        if getattr(self._local, "depth", 0):
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._local.depth = 0

    def add(self, sheet: str, row: dict[str, Any], *, ledger: bool = False) -> None:
        """Queue a new row; it must carry an 'id'. With ledger, remember it as the bot's."""
        self._insert(sheet, "append", str(row["id"]), row, ledger=ledger)

    def update(self, sheet: str, row_id: str, fields: dict[str, Any], *,
               ledger: bool = False) -> None:
        """Queue new values for the row whose id is row_id (and remember them, with ledger)."""
        self._insert(sheet, "update", row_id, fields, ledger=ledger)

    def _insert(self, sheet: str, op: str, row_id: str, payload: dict[str, Any], *,
                ledger: bool, repair: bool = False) -> None:
        with self.transaction():
            conn = self._conn()
            seq = conn.execute(
                "INSERT INTO entries (sheet, op, row_id, payload, created, attempts) "
                "VALUES (?,?,?,?,?,?)",
                (sheet, op, row_id, json.dumps(payload, ensure_ascii=False), self.clock(),
                 int(repair and op == "append")),  # a repaired row may be there: check ids
            ).lastrowid
            if ledger:
                self._remember(sheet, op, row_id, payload, seq, repair)

    def _remember(self, sheet: str, op: str, row_id: str, payload: dict[str, Any], seq: int,
                  repair: bool) -> None:
        conn = self._conn()
        known = conn.execute("SELECT fields, whole, rewrites FROM ledger WHERE sheet = ? AND "
                             "row_id = ?", (sheet, row_id)).fetchone()
        fields, whole, rewrites = ({}, op == "append", 0) if known is None else (
            json.loads(known[0]), bool(known[1]) or op == "append", known[2])
        conn.execute(
            "INSERT OR REPLACE INTO ledger (sheet, row_id, fields, seq, whole, rewrites) "
            "VALUES (?,?,?,?,?,?)",
            (sheet, row_id, json.dumps({**fields, **payload}, ensure_ascii=False), seq,
             int(whole), rewrites + 1 if repair else 0),
        )

    def ledger(self, sheet: str, settled_before: int) -> dict[str, LedgerRow]:
        """The ledger rows of one sheet whose last write has a seq below settled_before."""
        rows = self._conn().execute(
            "SELECT row_id, fields, seq, whole, rewrites FROM ledger WHERE sheet = ? AND seq < ?",
            (sheet, settled_before))
        return {r[0]: LedgerRow(json.loads(r[1]), r[2], bool(r[3]), r[4]) for r in rows}

    def ledger_sheets(self) -> list[str]:
        """The sheets the ledger knows rows of."""
        return [r[0] for r in self._conn().execute("SELECT DISTINCT sheet FROM ledger")]

    def repair(self, repairs: Repairs) -> None:
        """Queue the writes a comparison with the sheet asked for, and record organizer edits;
        a row the bot wrote again since the comparison is left alone."""
        with self.transaction():
            conn = self._conn()
            known = dict(conn.execute("SELECT row_id, seq FROM ledger WHERE sheet = ?",
                                      (repairs.sheet,)).fetchall())

            def unchanged(row_id: str) -> bool:
                return known.get(row_id) == repairs.seqs.get(row_id)

            for row_id, fields in filter(lambda r: unchanged(r[0]), repairs.restore):
                self._insert(repairs.sheet, "append", row_id, fields, ledger=True, repair=True)
            for row_id, fields in filter(lambda r: unchanged(r[0]), repairs.rewrite):
                self._insert(repairs.sheet, "update", row_id, fields, ledger=True, repair=True)
            for row_id, fields in filter(lambda r: unchanged(r[0]), repairs.adopt):
                (mine,) = conn.execute("SELECT fields FROM ledger WHERE sheet = ? AND row_id = ?",
                                       (repairs.sheet, row_id)).fetchone()
                conn.execute("UPDATE ledger SET fields = ? WHERE sheet = ? AND row_id = ?",
                             (json.dumps({**json.loads(mine), **fields}, ensure_ascii=False),
                              repairs.sheet, row_id))
            conn.executemany("UPDATE ledger SET rewrites = 0 WHERE sheet = ? AND row_id = ?",
                             [(repairs.sheet, row_id) for row_id in repairs.matched])

    def pending(self, limit: int = 5000) -> list[Entry]:
        """Entries not yet confirmed by the backend, oldest first."""
        rows = self._conn().execute(
            "SELECT * FROM entries WHERE done_at IS NULL ORDER BY seq LIMIT ?", (limit,)
        )
        return [_entry(r) for r in rows]

    def has_pending(self) -> bool:
        """Whether any entry waits (a cheap read)."""
        row = self._conn().execute("SELECT 1 FROM entries WHERE done_at IS NULL LIMIT 1")
        return row.fetchone() is not None

    def first_unseen(self, when: float) -> int:
        """The lowest seq still pending or confirmed at or after `when` (a copy read at `when`
        may lack it); one past the last entry when there is none."""
        row = self._conn().execute(
            "SELECT MIN(seq) FROM entries WHERE done_at IS NULL OR done_at >= ?", (when,)
        ).fetchone()
        if row[0] is not None:
            return int(row[0])
        (last,) = self._conn().execute(  # the highest seq ever given, even once purged
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'entries'), 0)"
        ).fetchone()
        return int(last) + 1

    def written_since(self, when: float) -> bool:
        """Whether the backend confirmed any entry at or after `when`."""
        row = self._conn().execute("SELECT 1 FROM entries WHERE done_at >= ? LIMIT 1", (when,))
        return row.fetchone() is not None

    def after(self, seq: int, sheet: str) -> list[Entry]:
        """Entries of one sheet with a seq greater than `seq`, oldest first."""
        rows = self._conn().execute(
            "SELECT * FROM entries WHERE seq > ? AND sheet = ? ORDER BY seq", (seq, sheet)
        )
        return [_entry(r) for r in rows]

    def mark_done(self, seqs: list[int]) -> None:
        """Record that the backend has confirmed these entries."""
        now = self.clock()
        with self.transaction():
            self._conn().executemany(
                "UPDATE entries SET done_at = ? WHERE seq = ?", [(now, s) for s in seqs]
            )

    def mark_attempt(self, seqs: list[int]) -> None:
        """Record that a write of these entries is being tried (its outcome may be lost)."""
        with self.transaction():
            self._conn().executemany(
                "UPDATE entries SET attempts = attempts + 1 WHERE seq = ?", [(s,) for s in seqs]
            )

    def take_quota(self, kind: str, limit: int, window: float) -> bool:
        """Count one API call of this kind if fewer than limit were made in the window."""
        now = self.clock()
        with self.transaction():
            conn = self._conn()
            conn.execute("DELETE FROM calls WHERE kind = ? AND at <= ?", (kind, now - window))
            (used,) = conn.execute("SELECT COUNT(*) FROM calls WHERE kind = ?", (kind,)).fetchone()
            if used >= limit:
                return False
            conn.execute("INSERT INTO calls (kind, at) VALUES (?, ?)", (kind, now))
            return True

    def purge(self, keep_seconds: float = 86400) -> None:
        """Forget confirmed entries older than keep_seconds."""
        with self.transaction():
            self._conn().execute(
                "DELETE FROM entries WHERE done_at < ?", (self.clock() - keep_seconds,)
            )

    def take_lease(self, seconds: float, *, ignore_schedule: bool = False) -> bool:
        """Claim the right to flush: one flusher across processes, at most once per interval
        unless ignore_schedule (the drain at shutdown). A lease whose holder has died (kill -9)
        is free at once, whatever time it was taken for."""
        now = self.clock()
        with self.transaction():
            conn = self._conn()
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            held = meta["lease_until"] >= now and alive(int(meta["lease_pid"]))
            if held or not (ignore_schedule or meta["next_flush"] <= now):
                return False
            conn.executemany("UPDATE meta SET value = ? WHERE key = ?",
                             [(now + seconds, "lease_until"), (os.getpid(), "lease_pid")])
            return True

    def release_lease(self, next_flush_in: float) -> None:
        """Give up the flush lease; no flush starts before next_flush_in seconds."""
        now = self.clock()
        with self.transaction():
            conn = self._conn()
            conn.execute("UPDATE meta SET value = 0 WHERE key = 'lease_until'")
            conn.execute("UPDATE meta SET value = ? WHERE key = 'next_flush'", (now + next_flush_in,))

    def give_up_lease(self) -> None:
        """Nothing to do: the lease is released after every flush, and a dead holder's is free."""

    def held_elsewhere(self) -> bool:
        """No: the other holders are processes of this machine, which drain it too."""
        return False

    def repairs_here(self) -> bool:
        """Every process on the machine may compare the sheet with the ledger."""
        return True

    def close(self) -> None:
        """Nothing to stop (connections close with their threads)."""

    def note_written(self, version: float) -> None:
        """The backend's change token after this machine's last write (Store.settle)."""
        with self._conn() as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'written_version'", (version,))

    def written_version(self) -> float:
        """What note_written recorded last, by any process of this machine (-1: nothing)."""
        return self._conn().execute(
            "SELECT value FROM meta WHERE key = 'written_version'").fetchone()[0]

    def describe(self) -> str:
        """The outbox's file."""
        return str(self.path)

    def health(self) -> tuple[int, float]:
        """(number of pending entries, age in seconds of the oldest one)."""
        depth, oldest = self._conn().execute(
            "SELECT COUNT(*), MIN(created) FROM entries WHERE done_at IS NULL"
        ).fetchone()
        return depth, (self.clock() - oldest) if oldest else 0.0


def _entry(row: tuple[Any, ...]) -> Entry:
    seq, sheet, op, row_id, payload, created, done_at, attempts = row
    return Entry(seq, sheet, op, row_id, json.loads(payload), created, done_at, attempts)
