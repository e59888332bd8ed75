"""Building the storage stack from Settings."""

from __future__ import annotations

import logging
from collections.abc import Callable

from linebot_app.config import ConfigError, Settings
from sheets.outbox import Outbox
from sheets.sample import create_sample_workbook
from sheets.store import Backend, Store
from sheets.workbook import WorkbookBackend

log = logging.getLogger(__name__)
QUOTA_MARGIN = 5  # stay a few calls under Google's per-minute quota


def build_store(settings: Settings) -> Store:
    """The Store for the configured backend, with its outbox in DATA_DIR."""
    outbox = Outbox(settings.data_dir / "outbox.sqlite3")
    return Store(build_backend(settings, outbox), outbox,
                 cache_seconds=settings.sheets_cache_seconds,
                 backoff_cap=settings.sheets_backoff_cap,
                 snapshot_path=settings.data_dir / "sheets-snapshot.json")


def quota_taker(settings: Settings, outbox: Outbox) -> Callable[[str], bool]:
    """A limiter shared by every process through the outbox database."""
    limit = max(1, settings.sheets_quota_per_minute - QUOTA_MARGIN)
    return lambda kind: outbox.take_quota(kind, limit, settings.sheets_quota_window)


def build_backend(settings: Settings, outbox: Outbox) -> Backend:
    """The Google backend, or the workbook. Only simulator mode creates the sample workbook
    when it is missing; elsewhere a missing workbook is a ConfigError (Settings.from_env)."""
    if settings.sheets_backend == "google":
        from sheets.google import open_backend

        return open_backend(settings.google, quota_taker(settings, outbox))
    path = settings.workbook_path
    if not path.exists():
        if not settings.simulator:
            raise ConfigError([f"WORKBOOK_PATH: no workbook at {path}"])
        create_sample_workbook(path)
        log.warning("simulator mode: created the sample workbook, with demo data, at %s", path)
    return WorkbookBackend(path)
