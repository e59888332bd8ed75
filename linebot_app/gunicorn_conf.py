"""Gunicorn settings and hooks: a background flusher per worker, a last flush on exit."""

from __future__ import annotations

import logging
import os
from typing import Any

from linebot_app.logs import configure

log = logging.getLogger(__name__)

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 30
graceful_timeout = 10
control_socket_disable = True


def _store(worker: Any) -> Any:
    bot = worker.wsgi.extensions.get("seminar_bot") if hasattr(worker.wsgi, "extensions") else None
    return bot.services.store if bot else None


def post_worker_init(worker: Any) -> None:
    """Start the outbox flusher thread in each worker."""
    configure()
    store = _store(worker)
    if store is not None:
        worker.seminar_flusher_stop = store.start_flusher()


def worker_exit(server: Any, worker: Any) -> None:
    """Stop the flusher and write what still waits, before the worker exits."""
    stop = getattr(worker, "seminar_flusher_stop", None)
    if stop is not None:
        stop.set()
    store = _store(worker)
    if store is not None and not store.drain(seconds=8.0):
        log.warning("rows still wait in the outbox; they are written after the next start")
