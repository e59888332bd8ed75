"""One SQLite connection per thread, in WAL mode, for the small databases in DATA_DIR."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)
CHECK_EVERY_SECONDS = 0.05  # the file's identity is looked at this often at most: whatever is
# written to the first file before the change is seen is in the copy rescued when it is seen


class FileReplaced(sqlite3.OperationalError):
    """The database file was replaced or removed while the bot ran."""


class LocalDB:
    """Opens the database on first use in each thread and applies its schema. Every use checks
    that the file is still the one first opened: one replaced or removed under a running bot
    fails every use from then on (so nothing more is acknowledged), and what the first file
    held is copied beside it (`<name>.rescued-<time>-<pid>`) through a connection kept open
    to it for that purpose."""

    def __init__(self, path: Path, schema: str, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.schema = schema
        self.synchronous = synchronous
        self.local = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()
        self.identity: tuple[int, int] | None = None  # (device, inode) of the file first opened
        self._keeper: sqlite3.Connection | None = None  # open to that file, for a rescue
        self.rescued: Path | None = None
        self._checked = 0.0  # when the file was last found to be the one first opened

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; transactions are explicit)."""
        if self.identity is not None and time.monotonic() - self._checked >= CHECK_EVERY_SECONDS:
            self._same_file()
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
                self._keeper = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                               check_same_thread=False)
                self._keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opened
                self.identity = _identity(self.path)
                self._ready = True

    def _same_file(self) -> None:
        """Raise FileReplaced, after rescuing the first file's contents once, when the path no
        longer names the file first opened."""
        if _identity(self.path) == self.identity:
            self._checked = time.monotonic()
            return
        with self._ready_lock:
            if self.rescued is None and self._keeper is not None:
                self.rescued = self.path.with_name(
                    f"{self.path.name}.rescued-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}")
                try:
                    target = sqlite3.connect(self.rescued)
                    try:
                        self._keeper.backup(target)
                    finally:
                        target.close()
                except (sqlite3.Error, OSError) as err:
                    log.critical("%s was replaced or removed while the bot ran, and what it "
                                 "held could not be copied to %s (%s): the bot refuses every "
                                 "event; keep this process running and copy the file it still "
                                 "holds open (ls -l /proc/%d/fd) before stopping it", self.path,
                                 self.rescued, err, os.getpid())
                else:
                    _move_side_files(self.path, self.rescued)
                    log.error("%s was replaced or removed while the bot ran: it now refuses "
                              "every event (LINE delivers them again) until restarted; what the "
                              "first file held is in %s and is taken back at the next start",
                              self.path, self.rescued)
        raise FileReplaced(f"{self.path} was replaced or removed while the bot ran; its "
                           f"contents are in {self.rescued}; restart the bot")


def _move_side_files(path: Path, rescued: Path) -> None:
    """Move the first file's write-ahead log and its index beside the rescued copy, so that
    SQLite never replays them into the file now at `path` (they are still open here)."""
    for side in ("-wal", "-shm"):
        try:
            os.rename(f"{path}{side}", f"{rescued}{side}")
        except FileNotFoundError:
            pass


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return (found.st_dev, found.st_ino)


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
            if rescued := sorted(p.name for p in data_dir.glob(f"{path.name}.rescued-*[0-9]")):
                holds += (f" (what the file before it held, when it was replaced under the "
                          f"running bot, is in {', '.join(rescued)}: the next start takes it "
                          "back)")
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


def alive(pid: int) -> bool:
    """Whether the process holding a lease or a claim still runs; a pid of 0 (an unknown holder) counts as
    alive, and a zombie as dead. Processes sharing DATA_DIR share a machine, so pids compare."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
