"""One SQLite connection per thread, in WAL mode, for the small databases in DATA_DIR."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path


class LocalDB:
    """Opens the database on first use in each thread and applies its schema."""

    def __init__(self, path: Path, schema: str, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.schema = schema
        self.synchronous = synchronous
        self.local = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; transactions are explicit)."""
        conn = getattr(self.local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            _wal(conn)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            self._apply_schema(conn)
            self.local.conn = conn
        return conn

    def _apply_schema(self, conn: sqlite3.Connection) -> None:
        # once per process: the schema script writes, and a write would wait for the
        # seat lock that another thread may hold
        with self._ready_lock:
            if not self._ready:
                conn.executescript(self.schema)
                self._ready = True


def _wal(conn: sqlite3.Connection, tries: int = 100) -> None:
    """Put the database in WAL mode (a setting kept in the file). Switching it takes a lock
    that SQLite does not wait for, so connections racing on a new file try again."""
    for _ in range(tries):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err):
                raise
            time.sleep(0.05)
    conn.execute("PRAGMA journal_mode=WAL")  # the last try: its error is the answer


class LocalStorageError(Exception):
    """DATA_DIR or a database in it cannot be used; the message names the path and the fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


PROBE_BYTES = 1024 * 1024  # a start needs at least this much room to write
HOLDS = {"outbox.sqlite3": "acknowledged rows that may not be in the sheet yet",
         "bot.sqlite3": "consents, conversations and deliveries not yet sent"}


def check_local_files(data_dir: Path) -> None:
    """Refuse to start on a DATA_DIR the bot cannot write, or on a damaged database in it.

    Nothing is moved or deleted here: the outbox may hold acknowledged rows not yet in the
    sheet, so the organizer decides what to do with a damaged file.
    """
    data_dir = Path(data_dir)
    problems: list[str] = []
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / f".write-probe-{os.getpid()}"
        try:
            with open(probe, "wb") as f:
                f.write(b"\0" * PROBE_BYTES)
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as err:
        problems.append(f"DATA_DIR {data_dir} cannot be written ({err.strerror or err}). Free "
                        "some space or give the bot's user write access to it (chown / chmod), "
                        "or point DATA_DIR at a folder it can write.")
    for path in sorted(data_dir.glob("*.sqlite3")) if data_dir.is_dir() else []:
        why = _damage(path) if os.access(path, os.R_OK | os.W_OK) else "not readable and " \
            "writable by the bot's user: chown / chmod it"
        if why:
            holds = HOLDS.get(path.name, "the bot's own records")
            problems.append(
                f"{path} is damaged ({why}). It holds {holds}: stop the bot, keep a copy of the "
                f"file, then `sqlite3 {path.name} .recover | sqlite3 fixed.sqlite3` and put "
                "fixed.sqlite3 in its place. Delete it only if you can do without what it holds.")
    if problems:
        raise LocalStorageError(problems)


def _damage(path: Path) -> str:
    """Why a database cannot be trusted, or '' when PRAGMA quick_check finds it sound."""
    try:
        conn = sqlite3.connect(path, timeout=30)
        try:
            found = [row[0] for row in conn.execute("PRAGMA quick_check")]
        finally:
            conn.close()
    except sqlite3.Error as err:
        return str(err)
    return "" if found == ["ok"] else "; ".join(found[:3])
