"""/healthz (liveness), /readyz (the sheet and the outbox), /_ah/warmup (App Engine)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("health", __name__)
OUTBOX_TOO_OLD_SECONDS = 300.0


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers, and its local storage worked for the last event it handled."""
    bot = current_app.extensions["seminar_bot"]
    fault = bot.storage_fault
    try:  # both databases still answer (a file replaced or damaged under us does not)
        bot.services.state.probe()
        bot.services.store.outbox.health()
    except bot.services.storage_errors as err:
        fault = f"{type(err).__name__}: {err}"
    if fault:
        return Response(f"local storage failed: {fault}", status=503, mimetype="text/plain")
    return Response("ok", mimetype="text/plain")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Whether the sheet has been read and the outbox is draining; no personal data."""
    store = current_app.extensions["seminar_bot"].services.store
    org = store.workbook()
    depth, age = store.outbox.health()
    ready = store.loaded and age < OUTBOX_TOO_OLD_SECONDS
    body = {"ready": ready, "sheet_loaded": store.loaded, "sheet_from_snapshot": store.from_snapshot,
            "sheet_problems": len(org.problems),
            "outbox_depth": depth, "outbox_oldest_seconds": round(age, 1)}
    return jsonify(body), 200 if ready else 503


@bp.get("/_ah/warmup")
def warmup() -> Response:
    """Read the sheet before the first user arrives."""
    current_app.extensions["seminar_bot"].services.store.workbook()
    return Response("warm", mimetype="text/plain")
