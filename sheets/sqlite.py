"""One SQLite connection per thread, in WAL mode, for the small databases in DATA_DIR."""

from __future__ import annotations

import sqlite3
import threading
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
            conn.execute("PRAGMA journal_mode=WAL")
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
