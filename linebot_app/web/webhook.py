"""POST /callback: the thin Flask adapter around the bot core (body and signature in, status out)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from linebot_app.bot.core import BadRequest, Bot, DeliverAgain, StorageFailed

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)


@bp.post("/callback")
def callback() -> Response:
    """Handle one webhook delivery from LINE (or the simulator)."""
    bot: Bot = current_app.extensions["seminar_bot"]
    body = request.get_data()  # larger than MAX_CONTENT_LENGTH: 413 from Werkzeug
    try:
        bot.handle(body, request.headers.get("X-Line-Signature", ""))
    except BadRequest as err:  # a bad signature, or a signed body that cannot be used
        log.warning("webhook refused: %s", err)
        return Response(str(err), status=400)
    except StorageFailed:  # logged by the bot; LINE delivers the event again
        return Response("local storage failed; deliver again later", status=503)
    except DeliverAgain as err:  # another instance is handling the event now
        return Response(str(err), status=503)
    return Response("OK", status=200)
