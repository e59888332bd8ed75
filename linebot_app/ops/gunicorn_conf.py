"""Gunicorn settings and hooks: a background flusher and scheduler per worker, a last flush on
exit."""

from __future__ import annotations

import logging
import threading
from typing import Any

from linebot_app.config import cloud_project, server
from linebot_app.logs import configure
from linebot_app.ops import scheduler

log = logging.getLogger(__name__)

_server = server()  # HOST, PORT, WEB_CONCURRENCY, GUNICORN_THREADS; a bad value stops the start
bind = _server.bind
worker_class = "gthread"
workers = _server.workers
threads = _server.threads
timeout = 30
graceful_timeout = 10
control_socket_disable = True


def _extension(worker: Any, name: str) -> Any:
    extensions = getattr(getattr(worker, "wsgi", None), "extensions", None)
    return extensions.get(name) if extensions else None


def _store(worker: Any) -> Any:
    bot = _extension(worker, "seminar_bot")
    return bot.services.store if bot else None


def post_worker_init(worker: Any) -> None:
    """Start the outbox flusher and the delivery worker in each worker, and the scheduler
    unless SCHEDULER=off."""
    configure(cloud_project())
    bot, settings = _extension(worker, "seminar_bot"), _extension(worker, "seminar_settings")
    if bot is None:
        return
    worker.seminar_stops = [bot.services.store.start_flusher(), bot.services.deliveries.start()]
    # read the sheet before the first user asks (the FAQ index waits for the first question)
    threading.Thread(target=bot.services.store.workbook, daemon=True).start()
    if settings.scheduler:
        worker.seminar_stops.append(scheduler.start(bot.services, settings.scheduler_seconds))
        log.info("scheduler on: a round every %.0f s", settings.scheduler_seconds)


def worker_exit(server: Any, worker: Any) -> None:
    """Stop the flusher and the scheduler, and write what still waits, before the worker exits."""
    for stop in getattr(worker, "seminar_stops", []):
        stop.set()
    store = _store(worker)
    if store is None:
        return
    store.drain(seconds=8.0)
    store.close()
    depth, _ = store.outbox.health()
    if depth:
        log.warning("%d rows still wait in %s; they are written after the next start", depth,
                    store.outbox.describe())
    else:
        log.info("0 rows wait in %s: everything is in the sheet", store.outbox.describe())
