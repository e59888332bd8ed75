"""Cron endpoints: /tasks/flush writes the outbox; /tasks/remind runs the scheduler's round.

Who gets in: App Engine's cron header, only on App Engine (only there is it stripped from
outside requests); the TASKS_TOKEN bearer, compared in constant time; and on Cloud Run a
Google-signed OIDC token from Cloud Scheduler for TASKS_AUDIENCE (and TASKS_INVOKER, if set).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from linebot_app.config import TasksSettings
from linebot_app.ops import scheduler

log = logging.getLogger(__name__)
bp = Blueprint("tasks", __name__, url_prefix="/tasks")
CERTS_TIMEOUT_SECONDS = 5.0


class TimedRequest:
    """google-auth's HTTP transport with a timeout on every call (it fetches Google's certs)."""

    def __init__(self, timeout: float = CERTS_TIMEOUT_SECONDS) -> None:
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


def authorized() -> bool:
    """Whether this request may run a task; see the module's docstring."""
    tasks: TasksSettings = current_app.extensions["seminar_settings"].tasks
    if tasks.on_app_engine and request.headers.get("X-Appengine-Cron") == "true":
        return True
    given = request.headers.get("Authorization", "")
    if tasks.token and hmac.compare_digest(given.encode(), f"Bearer {tasks.token}".encode()):
        return True
    if tasks.audience and given.startswith("Bearer "):
        return _google_signed(given.removeprefix("Bearer "), tasks)
    return False


def _google_signed(token: str, tasks: TasksSettings) -> bool:
    """A Cloud Scheduler OIDC token: signed by Google, for our audience, from the invoker."""
    import google.auth.exceptions
    from google.oauth2 import id_token

    try:
        claims = id_token.verify_oauth2_token(token, google_transport(current_app),
                                              audience=tasks.audience)
    except (ValueError, google.auth.exceptions.GoogleAuthError) as err:
        log.warning("refused a /tasks call: its token does not verify (%s)", str(err)[:200])
        return False
    if tasks.invoker and not (claims.get("email") == tasks.invoker and claims.get("email_verified")):
        log.warning("refused a /tasks call from %s (TASKS_INVOKER is %s)",
                    claims.get("email"), tasks.invoker)
        return False
    return True


@bp.post("/flush")
def flush() -> Response | tuple[Response, int]:
    """Write the outbox now (within 8 s), for cron and Cloud Scheduler."""
    if not authorized():
        return jsonify({"error": "forbidden"}), 403
    store = current_app.extensions["seminar_bot"].services.store
    empty = store.drain(seconds=8.0)
    depth, age = store.outbox.health()
    return jsonify({"empty": empty, "pending": depth, "oldest_seconds": round(age, 1)})


@bp.post("/remind")
def remind() -> Response | tuple[Response, int]:
    """Tell registrants of event changes, make due lottery draws, end offers past their
    deadline, send due reminders and after-event messages, and resume interrupted deliveries
    (the scheduler's round, for cron)."""
    if not authorized():
        return jsonify({"error": "forbidden"}), 403
    done = scheduler.tick(current_app.extensions["seminar_bot"].services)
    return jsonify({"changes": done.changes, "draws": done.draws, "expired": done.expired,
                    "filled": done.filled, "due": done.due, "sent": done.sent})
