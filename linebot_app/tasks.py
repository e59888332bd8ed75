"""Cron endpoints: /tasks/flush writes the outbox; /tasks/remind runs the scheduler's round."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from linebot_app import scheduler

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


def authorized() -> bool:
    """App Engine cron (its header cannot come from outside) or the TASKS_TOKEN bearer."""
    if request.headers.get("X-Appengine-Cron") == "true":
        return True
    token = current_app.extensions["seminar_settings"].tasks_token
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


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
    """Tell registrants of event changes, send due reminders and after-event messages, and
    resume interrupted deliveries (the scheduler's round, for cron)."""
    if not authorized():
        return jsonify({"error": "forbidden"}), 403
    done = scheduler.tick(current_app.extensions["seminar_bot"].services)
    return jsonify({"changes": done.changes, "due": done.due, "sent": done.sent})
