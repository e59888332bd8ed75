"""Cron endpoints: /tasks/flush writes the outbox; /tasks/remind sends what is due."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from linebot_app import reminders

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
    """Send due reminders and after-event messages, and resume interrupted deliveries."""
    if not authorized():
        return jsonify({"error": "forbidden"}), 403
    services = current_app.extensions["seminar_bot"].services
    org = services.store.organizer()
    due = list(reminders.due(org, services.store.registrations(), services.now()))
    sent = sum(services.deliveries.deliver(d) for d in due)
    sent += services.deliveries.resume()
    return jsonify({"due": len(due), "sent": sent})
