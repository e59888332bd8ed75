"""Building the storage stack from Settings."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from linebot_app.config import ConfigError, Settings
from storage.backend import Backend, BackendError
from storage.local.outbox import SqliteOutbox
from storage.local.state import SqliteState
from storage.sheets.snapshot import FileSnapshot
from storage.sheets.workbook import WorkbookBackend
from storage.state import BotState
from storage.store import Store

log = logging.getLogger(__name__)
QUOTA_MARGIN = 5  # stay a few calls under Google's per-minute quota


def build_outbox(settings: Settings, clock: Callable[[], float] = time.time) -> Any:
    """The outbox: SQLite in DATA_DIR, or Firestore (storage.firestore.outbox)."""
    if settings.state_backend == "firestore":
        from storage.firestore.client import Firestore
        from storage.firestore.outbox import FirestoreOutbox

        return FirestoreOutbox(Firestore(settings.firestore), clock=clock)
    return SqliteOutbox(settings.data_dir / "outbox.sqlite3", clock=clock)


def build_store(settings: Settings, **options: Any) -> Store:
    """The Store for the configured backend, with its outbox, ledger and last good copy in
    DATA_DIR (sqlite) or in Firestore, and the seat decisions that go with them. Options
    override the Store's settings (tests)."""
    outbox = build_outbox(settings, options.get("clock", time.time))
    if isinstance(outbox, SqliteOutbox):  # (check reads; only a start takes them back)
        outbox.take_back_rescued()  # what a file replaced under a running bot held
    shared = settings.state_backend == "firestore"
    if shared:
        from storage.firestore.client import FirestoreSnapshot
        from storage.firestore.seats import FirestoreSeats

        snapshot: Any = FirestoreSnapshot(outbox.fs)
    else:
        snapshot = FileSnapshot(settings.data_dir / "sheets-snapshot.json")
    store = Store(build_backend(settings, outbox), outbox, **{
        "cache_seconds": settings.sheets_cache_seconds, "backoff_cap": settings.sheets_backoff_cap,
        "snapshot": snapshot, **options})
    if shared:
        store.seats = seats = FirestoreSeats(outbox, store.registrations)
        store.on_reload.append(seats.sync_sheet)
    return store


def build_state(settings: Settings) -> BotState:
    """The bot's own state: SQLite in DATA_DIR, or Firestore."""
    if settings.state_backend == "firestore":
        from storage.firestore.client import Firestore
        from storage.firestore.state import FirestoreState

        return FirestoreState(Firestore(settings.firestore))
    return SqliteState(settings.data_dir / "bot.sqlite3")


def quota_taker(settings: Settings, outbox: Any) -> Callable[[str], bool]:
    """A limiter shared by every process through the outbox (its database, or Firestore). When
    the count cannot be kept, the Sheets call waits like any other that fails."""
    limit = max(1, settings.sheets_quota_per_minute - QUOTA_MARGIN)

    def take(kind: str) -> bool:
        try:
            return outbox.take_quota(kind, limit, settings.sheets_quota_window)
        except outbox.errors as err:
            raise BackendError(f"Sheets の呼び出し回数を数える Firestore に届きません / the count "
                               f"of Sheets calls, kept in the bot's state store, cannot be "
                               f"reached: {type(err).__name__}") from err

    return take


def build_backend(settings: Settings, outbox: Any) -> Backend:
    """The Google backend, or the workbook. Only simulator mode creates the sample workbook
    when it is missing; elsewhere a missing workbook is a ConfigError (Settings.from_env)."""
    if settings.sheets_backend == "google":
        from storage.sheets.google import open_backend

        return open_backend(settings.google, quota_taker(settings, outbox))
    path = settings.workbook_path
    if not path.exists():
        if not settings.simulator:
            raise ConfigError([f"WORKBOOK_PATH: no workbook at {path}"])
        from storage.sheets.sample import create_sample_workbook

        create_sample_workbook(path)
        log.warning("simulator mode: created the sample workbook, with demo data, at %s", path)
    return WorkbookBackend(path)
