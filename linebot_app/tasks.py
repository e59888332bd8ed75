"""Cron endpoints: /tasks/flush writes the outbox; /tasks/remind runs the scheduler's round."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from linebot_app import scheduler
from linebot_app.config import Settings

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


def authorized() -> bool:
    """App Engine's cron header, on App Engine only (only there is it stripped from outside
    requests), or the TASKS_TOKEN bearer compared in constant time. Nothing else gets in."""
    settings = current_app.extensions["seminar_settings"]
    if settings.on_app_engine and request.headers.get("X-Appengine-Cron") == "true":
        return True
    given = request.headers.get("Authorization", "")
    wanted = f"Bearer {settings.tasks_token}"
    return bool(settings.tasks_token) and hmac.compare_digest(given.encode(), wanted.encode())


def closed_reason(settings: Settings) -> str:
    """Why /tasks/* answers 403 to everything here, or '' when cron can get in."""
    if settings.on_app_engine or settings.tasks_token:
        return ""
    return ("/tasks/flush と /tasks/remind はすべて 403 を返します: App Engine の外では "
            "TASKS_TOKEN が要ります / /tasks/* refuse everything: set TASKS_TOKEN off App Engine")


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
