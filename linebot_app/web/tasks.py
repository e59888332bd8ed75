"""Cron endpoints: /tasks/flush writes the outbox; /tasks/remind runs the scheduler's round.

Who gets in: App Engine's cron header, only on App Engine (only there is it stripped from
outside requests); the TASKS_TOKEN bearer, compared in constant time; and on Cloud Run a
Google-signed OIDC token from Cloud Scheduler for TASKS_AUDIENCE (and TASKS_INVOKER, if set),
checked as `oidc` says: cheaply, before any network call.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from linebot_app.config import TasksSettings
from linebot_app.ops import scheduler
from linebot_app.web import oidc

log = logging.getLogger(__name__)
bp = Blueprint("tasks", __name__, url_prefix="/tasks")
WARN_EVERY_SECONDS = 10.0  # refusals are logged at most this often, with how many were held


class Throttled:
    """A warning logged at most once per WARN_EVERY_SECONDS, with the count held back since:
    a flood of forged tokens must not become a flood of log lines."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = -WARN_EVERY_SECONDS
        self.held = 0

    def warn(self, text: str) -> None:
        with self.lock:
            now = time.monotonic()
            if now - self.last < WARN_EVERY_SECONDS:
                self.held += 1
                return
            held, self.held, self.last = self.held, 0, now
        log.warning("%s%s", text, f" (and {held} more refused since the last such line)"
                    if held else "")



class TimedRequest:
    """google-auth's HTTP transport with a timeout on every call (it fetches Google's certs)."""

    def __init__(self, timeout: float = oidc.CERTS_TIMEOUT_SECONDS) -> None:
        import google.auth.transport.requests

        self.inner = google.auth.transport.requests.Request()
        self.timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: float | None = None, **kwargs: Any) -> Any:
        return self.inner(url, method=method, body=body, headers=headers,
                          timeout=timeout or self.timeout, **kwargs)


def google_transport(app: Any) -> Any:
    """The transport OIDC checks use: one per app, made on first use (tests put their own)."""
    if "seminar_google_request" not in app.extensions:
        app.extensions["seminar_google_request"] = TimedRequest()
    return app.extensions["seminar_google_request"]


def verifier(app: Any, tasks: TasksSettings) -> oidc.Verifier:
    """The OIDC verifier: one per app, made on first use, holding Google's certificates."""
    if "seminar_oidc" not in app.extensions:
        app.extensions["seminar_oidc"] = oidc.Verifier(
            oidc.GoogleCerts(google_transport(app)), tasks.audience, tasks.invoker)
    return app.extensions["seminar_oidc"]


def refused() -> tuple[Response, int] | None:
    """None when this request may run a task (see the module's docstring), else the answer:
    403, or 429 while too many tokens are being checked."""
    tasks: TasksSettings = current_app.extensions["seminar_settings"].tasks
    if tasks.on_app_engine and request.headers.get("X-Appengine-Cron") == "true":
        return None
    given = request.headers.get("Authorization", "")
    if tasks.token and hmac.compare_digest(given.encode(), f"Bearer {tasks.token}".encode()):
        return None
    if tasks.audience and given.startswith("Bearer "):
        try:
            verifier(current_app, tasks).verify(given.removeprefix("Bearer "))
            return None
        except oidc.Busy:
            return jsonify({"error": "busy"}), 429
        except oidc.Refused as why:
            refusals = current_app.extensions.setdefault("seminar_refusals", Throttled())
            refusals.warn(f"refused a /tasks call: its token {why}")
    return jsonify({"error": "forbidden"}), 403


@bp.post("/flush")
def flush() -> Response | tuple[Response, int]:
    """Write the outbox now (within 8 s), for cron and Cloud Scheduler."""
    if (answer := refused()) is not None:
        return answer
    store = current_app.extensions["seminar_bot"].services.store
    empty = store.drain(seconds=8.0)
    depth, age = store.outbox.health()
    return jsonify({"empty": empty, "pending": depth, "oldest_seconds": round(age, 1)})


@bp.post("/remind")
def remind() -> Response | tuple[Response, int]:
    """Tell registrants of event changes, make due lottery draws, end offers past their
    deadline, send due reminders and after-event messages, and resume interrupted deliveries
    (the scheduler's round, for cron)."""
    if (answer := refused()) is not None:
        return answer
    done = scheduler.tick(current_app.extensions["seminar_bot"].services)
    return jsonify({"changes": done.changes, "draws": done.draws, "expired": done.expired,
                    "filled": done.filled, "due": done.due, "sent": done.sent})
