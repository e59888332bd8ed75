"""The bot's own state in SQLite in DATA_DIR (one machine): storage.state.BotState's SQLite
implementation."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage.local.sqlite import LocalDB, alive
from storage.state import (
    CLAIM_SECONDS,
    CONVERSATION_SECONDS,
    DEDUP_KEEP_SECONDS,
    PURGE_CHANCE,
    EventBusy,
    Plan,
)

SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS claims (
    event_id TEXT PRIMARY KEY, at REAL NOT NULL, until REAL, pid INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS claims_at ON claims (at);
CREATE TABLE IF NOT EXISTS handled (event_id TEXT PRIMARY KEY, at REAL NOT NULL);
INSERT OR IGNORE INTO claims (event_id, at) SELECT event_id, at FROM handled;
DROP TABLE handled;
CREATE TABLE IF NOT EXISTS conversations (
    user_id TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS consents (user_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    key TEXT NOT NULL, n INTEGER NOT NULL, retry_key TEXT NOT NULL, event_id TEXT NOT NULL,
    kind TEXT NOT NULL, summary TEXT NOT NULL, users TEXT NOT NULL, messages TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', lease REAL NOT NULL DEFAULT 0, sent_at REAL,
    PRIMARY KEY (key, n));
CREATE INDEX IF NOT EXISTS chunks_status ON chunks (status);
CREATE TABLE IF NOT EXISTS planned (key TEXT PRIMARY KEY);
INSERT OR IGNORE INTO planned (key) SELECT DISTINCT key FROM chunks;
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, notify TEXT NOT NULL, label TEXT NOT NULL, total INTEGER NOT NULL,
    created REAL NOT NULL, done_at REAL);
CREATE TABLE IF NOT EXISTS job_chunks (job TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (job, key));
CREATE TABLE IF NOT EXISTS survey_progress (
    survey_id TEXT NOT NULL, user_id TEXT NOT NULL, started REAL NOT NULL, completed REAL,
    row_id TEXT, nudged TEXT, PRIMARY KEY (survey_id, user_id));
CREATE TABLE IF NOT EXISTS checkins (
    event_id TEXT NOT NULL, user_id TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (event_id, user_id));
CREATE TABLE IF NOT EXISTS event_versions (
    event_id TEXT PRIMARY KEY, fields TEXT NOT NULL, version INTEGER NOT NULL,
    changed TEXT NOT NULL DEFAULT '[]', at REAL NOT NULL);
COMMIT;
"""
class SqliteState:
    """Small SQLite-backed state shared by every worker process on the machine."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    poll_seconds = 2.0  # a local query costs nothing

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._conn = LocalDB(self.path, SCHEMA).conn

    def probe(self) -> None:
        """Raise when the database no longer answers (a file replaced or damaged under us)."""
        self._conn().execute("SELECT 1 FROM consents LIMIT 1").fetchall()

    def close(self) -> None:
        """Nothing to stop."""

    def claim_event(self, event_id: str) -> bool:
        """True when this process should handle the event: the first time its id is seen, or
        when the process that claimed it died (kill -9) or claimed it CLAIM_SECONDS ago and
        never finished. False for a redelivery of a handled event; EventBusy for one another
        live process is handling now."""
        if random.random() < PURGE_CHANCE:
            self.forget_old_events()
        now, conn = self.clock(), self._conn()
        if conn.execute("INSERT OR IGNORE INTO claims (event_id, at, until, pid) VALUES "
                        "(?, ?, ?, ?)", (event_id, now, now + CLAIM_SECONDS, os.getpid())
                        ).rowcount == 1:
            return True
        found = conn.execute("SELECT until, pid FROM claims WHERE event_id = ?",
                             (event_id,)).fetchone()
        if found is None:  # released meanwhile
            return self.claim_event(event_id)
        until, pid = found
        if until is None:
            return False
        if until > now and alive(pid):  # this process or another live one
            raise EventBusy(f"event {event_id} is being handled by process {pid}")
        return conn.execute(  # the claimer died or gave up: take it, unless another did first
            "UPDATE claims SET at = ?, until = ?, pid = ? WHERE event_id = ? AND until = ? AND "
            "pid = ?", (now, now + CLAIM_SECONDS, os.getpid(), event_id, until, pid)
        ).rowcount == 1

    def finish_event(self, event_id: str) -> None:
        """The event was handled: redeliveries of it are skipped from now on."""
        self._conn().execute("UPDATE claims SET until = NULL WHERE event_id = ?", (event_id,))

    def unclaim_event(self, event_id: str) -> None:
        """Forget an id whose handling failed, so that LINE's redelivery is handled."""
        self._conn().execute("DELETE FROM claims WHERE event_id = ?", (event_id,))

    def forget_old_events(self) -> None:
        """Drop handled ids older than the keep period, and expired conversations."""
        conn = self._conn()
        conn.execute("DELETE FROM claims WHERE at < ?", (self.clock() - DEDUP_KEEP_SECONDS,))
        conn.execute("DELETE FROM conversations WHERE expires < ?", (self.clock(),))

    def conversation(self, user_id: str) -> dict[str, Any] | None:
        """The user's open conversation, unless it has expired."""
        row = self._conn().execute(
            "SELECT data, expires FROM conversations WHERE user_id = ?", (user_id,)
        ).fetchone()
        if row is None or row[1] < self.clock():
            return None
        return json.loads(row[0])

    def save_conversation(
        self, user_id: str, data: dict[str, Any], ttl: float = CONVERSATION_SECONDS
    ) -> None:
        """Store the conversation; it expires ttl seconds after its last answer."""
        self._conn().execute(
            "INSERT OR REPLACE INTO conversations (user_id, data, expires) VALUES (?, ?, ?)",
            (user_id, json.dumps(data, ensure_ascii=False), self.clock() + ttl),
        )

    def end_conversation(self, user_id: str) -> None:
        """Forget the user's conversation."""
        self._conn().execute("DELETE FROM conversations WHERE user_id = ?", (user_id,))

    def check_in(self, event_id: str, user_id: str, at: str) -> tuple[bool, str]:
        """Record attendance once: (True, at) the first time, (False, first time) after."""
        conn = self._conn()
        cur = conn.execute("INSERT OR IGNORE INTO checkins (event_id, user_id, at) VALUES (?,?,?)",
                           (event_id, user_id, at))
        if cur.rowcount == 1:
            return True, at
        row = conn.execute("SELECT at FROM checkins WHERE event_id = ? AND user_id = ?",
                           (event_id, user_id)).fetchone()
        return False, row[0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write lock across threads and processes for what is done inside."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def plan(self, keys: list[str], build: Callable[[set[str]], Plan]) -> Plan:
        """In one transaction: the keys never planned before, the plan built from them, and
        its chunks and job recorded (a key is planned once, so it is sent once)."""
        with self.transaction():
            plan = build({key for key in dict.fromkeys(keys) if self.mark_planned(key)})
            self.add_chunks(plan.chunks)
            if plan.job:
                job = plan.job
                self.add_job(job.id, job.notify, job.label, job.total, job.keys)
        return plan

    def mark_planned(self, key: str) -> bool:
        """Remember a delivery's key; False when it was planned before (it is sent once)."""
        cur = self._conn().execute("INSERT OR IGNORE INTO planned (key) VALUES (?)", (key,))
        return cur.rowcount == 1

    def add_chunks(self, chunks: list[dict[str, Any]]) -> None:
        """Freeze recipients and messages, up to 500 people a chunk, for the sender."""
        self._conn().executemany(
            "INSERT INTO chunks (key, n, retry_key, event_id, kind, summary, users, messages) "
            "VALUES (:key, :n, :retry_key, :event_id, :kind, :summary, :users, :messages)",
            chunks)

    def add_job(self, job: str, notify: str, label: str, total: int, keys: list[str]) -> None:
        """A delivery asked for by someone who is told when all its chunks are sent."""
        conn = self._conn()
        conn.execute("INSERT INTO jobs (id, notify, label, total, created) VALUES (?,?,?,?,?)",
                     (job, notify, label, total, self.clock()))
        conn.executemany("INSERT INTO job_chunks (job, key) VALUES (?, ?)",
                         [(job, key) for key in keys])

    def finished_jobs(self) -> list[tuple[str, str, str, int]]:
        """(id, notify, label, total) of jobs not yet reported whose chunks are all sent."""
        return self._conn().execute(
            "SELECT id, notify, label, total FROM jobs WHERE done_at IS NULL AND NOT EXISTS ("
            "SELECT 1 FROM job_chunks j JOIN chunks c ON c.key = j.key "
            "WHERE j.job = jobs.id AND c.status != 'sent') ORDER BY created").fetchall()

    def claim_job(self, job: str) -> bool:
        """Take the telling of a finished job: one process, once (reopen_job if it fails)."""
        cur = self._conn().execute("UPDATE jobs SET done_at = ? WHERE id = ? AND done_at IS NULL",
                                   (self.clock(), job))
        return cur.rowcount == 1

    def reopen_job(self, job: str) -> None:
        """The requester could not be told; the next pass tries again."""
        self._conn().execute("UPDATE jobs SET done_at = NULL WHERE id = ?", (job,))

    def pending_chunks(self, key: str | None = None) -> list[dict[str, Any]]:
        """Chunks not yet sent (of one delivery, or of all), in order."""
        where, args = ("AND key = ?", (key,)) if key else ("", ())
        cur = self._conn().execute(
            f"SELECT key, n, retry_key, event_id, kind, summary, users, messages FROM chunks "
            f"WHERE status = 'pending' {where} ORDER BY key, n", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def claim_chunk(self, key: str, n: int, seconds: float) -> bool:
        """Take a chunk for sending; another sender cannot take it until the lease runs out."""
        now = self.clock()
        cur = self._conn().execute(
            "UPDATE chunks SET lease = ? WHERE key = ? AND n = ? AND status = 'pending' "
            "AND lease < ?", (now + seconds, key, n, now))
        return cur.rowcount == 1

    def finish_chunk(self, key: str, n: int, sent: bool, retry_in: float = 0.0) -> None:
        """Mark a chunk sent, or give it back for a try retry_in seconds from now."""
        if sent:
            self._conn().execute("UPDATE chunks SET status = 'sent', sent_at = ? WHERE key = ? "
                                 "AND n = ?", (self.clock(), key, n))
        else:
            self._conn().execute("UPDATE chunks SET lease = ? WHERE key = ? AND n = ?",
                                 (self.clock() + retry_in if retry_in else 0, key, n))

    def survey_started(self, survey_id: str, user_id: str) -> None:
        """Count a respondent as started (once)."""
        self._conn().execute("INSERT OR IGNORE INTO survey_progress (survey_id, user_id, started)"
                             " VALUES (?, ?, ?)", (survey_id, user_id, self.clock()))

    def survey_row(self, survey_id: str, user_id: str) -> str | None:
        """The answers row a user already sent for a survey, if any."""
        row = self._conn().execute(
            "SELECT row_id FROM survey_progress WHERE survey_id = ? AND user_id = ? "
            "AND completed IS NOT NULL", (survey_id, user_id)).fetchone()
        return row[0] if row else None

    def survey_completed(self, survey_id: str, user_id: str, row_id: str) -> None:
        """Record a confirmed response."""
        self.survey_started(survey_id, user_id)
        self._conn().execute("UPDATE survey_progress SET completed = ?, row_id = ? "
                             "WHERE survey_id = ? AND user_id = ?",
                             (self.clock(), row_id, survey_id, user_id))

    def survey_counts(self, survey_id: str) -> tuple[int, int, float | None]:
        """(started, completed, time of the last completion) for a survey."""
        return self._conn().execute(
            "SELECT COUNT(*), COUNT(completed), MAX(completed) FROM survey_progress "
            "WHERE survey_id = ?", (survey_id,)).fetchone()

    def known_users(self) -> list[str]:
        """Everyone who has talked to the bot enough to consent or start a survey."""
        rows = self._conn().execute("SELECT user_id FROM consents UNION "
                                    "SELECT user_id FROM survey_progress")
        return [r[0] for r in rows]

    def has_consent(self, user_id: str) -> bool:
        """Whether the user has agreed to the privacy notice."""
        row = self._conn().execute(
            "SELECT 1 FROM consents WHERE user_id = ?", (user_id,)
        ).fetchone()
        return row is not None

    def give_consent(self, user_id: str) -> None:
        """Record the user's agreement to the privacy notice."""
        self._conn().execute(
            "INSERT OR IGNORE INTO consents (user_id, at) VALUES (?, ?)", (user_id, self.clock())
        )

    def event_version(self, event_id: str) -> tuple[dict[str, Any], int] | None:
        """The event's fields as last seen and how many changes were noticed, or None."""
        row = self._conn().execute("SELECT fields, version FROM event_versions WHERE event_id = ?",
                                   (event_id,)).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def remember_event(self, event_id: str, fields: dict[str, Any], version: int,
                       changed: list[str]) -> None:
        """Record the event's fields at this version; an older version never overwrites."""
        self._conn().execute(
            "INSERT INTO event_versions (event_id, fields, version, changed, at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET fields = excluded.fields,"
            " version = excluded.version, changed = excluded.changed, at = excluded.at "
            "WHERE excluded.version >= event_versions.version",
            (event_id, json.dumps(fields, ensure_ascii=False), version,
             json.dumps(changed, ensure_ascii=False), self.clock()))

    def event_changes(self, event_id: str) -> list[str]:
        """What the last noticed change of the event touched (日時, 会場, 開催), or []."""
        row = self._conn().execute("SELECT changed FROM event_versions WHERE event_id = ?",
                                   (event_id,)).fetchone()
        return json.loads(row[0]) if row else []
