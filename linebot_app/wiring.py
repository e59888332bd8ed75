"""Building the storage stack from Settings."""

from __future__ import annotations

import logging

from linebot_app.config import Settings
from sheets.outbox import Outbox
from sheets.sample import create_sample_workbook
from sheets.store import Store
from sheets.workbook import WorkbookBackend

log = logging.getLogger(__name__)


def build_store(settings: Settings) -> Store:
    """The Store for the configured backend, with its outbox in DATA_DIR."""
    outbox = Outbox(settings.data_dir / "outbox.sqlite3")
    if settings.sheets_backend == "google":
        raise NotImplementedError("SHEETS_BACKEND=google is not available yet")
    path = settings.workbook_path
    if not path.exists():
        create_sample_workbook(path)
        log.info("created the sample workbook at %s", path)
    return Store(WorkbookBackend(path), outbox, cache_seconds=settings.sheets_cache_seconds)
