"""POST /callback: verify the signature, parse, drop redeliveries, dispatch each event."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, request
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.webhook import WebhookParser
from linebot.v3.webhooks import (
    Event,
    FollowEvent,
    JoinEvent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
)

from linebot_app import facilities
from linebot_app import messages as m
from linebot_app.commands import handle_text, starts_with_command
from linebot_app.context import Ctx, Services
from linebot_app.logs import mask

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)
HINT = "テキストで話しかけてください。「ヘルプ」で使い方を表示します。"


@dataclass
class Bot:
    """The parser and the services; one per app."""

    parser: WebhookParser
    services: Services
    reply: Callable[[str, list[m.Message]], Any]


class BadRequest(Exception):
    """A webhook body that is signed but unusable."""


@bp.post("/callback")
def callback() -> Response:
    """Handle one webhook delivery from LINE (or the simulator)."""
    bot: Bot = current_app.extensions["seminar_bot"]
    signature = request.headers.get("X-Line-Signature", "")
    body = request.get_data()  # larger than MAX_CONTENT_LENGTH: 413 from Werkzeug
    if not signature:
        return Response("missing signature", status=400)
    try:
        events = parse(bot.parser, body, signature)
    except InvalidSignatureError:
        log.warning("webhook with a bad signature refused")
        return Response("bad signature", status=400)
    except BadRequest as err:
        return Response(str(err), status=400)
    for event in events:
        handle_safely(bot, event)
    return Response("OK", status=200)


def parse(parser: WebhookParser, body: bytes, signature: str) -> list[Event]:
    """Check the signature with the SDK, then parse; one bad event does not sink the batch."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidSignatureError("body is not UTF-8") from err
    try:
        return parser.parse(text, signature)
    except InvalidSignatureError:
        raise
    except json.JSONDecodeError as err:
        raise BadRequest("body is not JSON") from err
    except (ValueError, KeyError, TypeError, AttributeError):
        return _parse_each(text)


def _parse_each(text: str) -> list[Event]:
    payload = json.loads(text)
    raw = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(raw, list):
        raise BadRequest("no events list")
    events = []
    for item in raw:
        try:
            events.append(Event.from_dict(item))
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("skipped a webhook event that does not parse")
    return events


def handle_safely(bot: Bot, event: Event) -> None:
    """Handle one event; a failure is logged and the rest of the batch goes on."""
    event_id = getattr(event, "webhook_event_id", None)
    if event_id and not bot.services.state.claim_event(event_id):
        log.info("redelivered event %s skipped", event_id)
        return
    try:
        replies = dispatch(bot.services, event)
        token = getattr(event, "reply_token", None)
        if replies and token:
            bot.reply(token, replies)
    except Exception:
        log.exception("event %s (%s) failed", event_id, getattr(event, "type", "?"))


def _ctx(services: Services, event: Event) -> Ctx:
    source = event.source
    user_id = getattr(source, "user_id", None) or ""
    return Ctx(user_id=user_id, chat=getattr(source, "type", "user") or "user", services=services)


def on_message(ctx: Ctx, event: MessageEvent) -> list[m.Message]:
    """Text goes to the commands; other kinds get a hint in 1:1 chats."""
    message = event.message
    if isinstance(message, LocationMessageContent) and ctx.chat == "user":
        return facilities.on_location(ctx, message.latitude, message.longitude)
    if not isinstance(message, TextMessageContent):
        return [m.text(HINT)] if ctx.chat == "user" else []
    text, mentioned = strip_mention(message)
    if ctx.chat != "user" and not (mentioned or starts_with_command(text)):
        return []
    log.info("text from %s in %s chat", mask(ctx.user_id), ctx.chat)
    return handle_text(ctx, text, addressed=ctx.chat == "user" or mentioned)


def strip_mention(message: TextMessageContent) -> tuple[str, bool]:
    """The text without the bot's @mention, and whether the bot was mentioned."""
    text = message.text
    mentionees = message.mention.mentionees if message.mention else []
    mine = [x for x in mentionees if getattr(x, "is_self", False)]
    for x in sorted(mine, key=lambda x: x.index, reverse=True):
        text = text[: x.index] + text[x.index + x.length:]
    return text, bool(mine)


def on_postback(ctx: Ctx, event: PostbackEvent) -> list[m.Message]:
    """Postback data is a command line, so buttons and typed text share one path."""
    return handle_text(ctx, event.postback.data, addressed=True)


def on_follow(ctx: Ctx, event: FollowEvent) -> list[m.Message]:
    """Greet a new friend with the welcome message from settings."""
    welcome = ctx.org.settings.get("welcome_message") or "友だち追加ありがとうございます。"
    return [m.text(welcome, [m.message_action("イベント"), m.message_action("ヘルプ")])]


def on_join(ctx: Ctx, event: JoinEvent) -> list[m.Message]:
    """Say how to talk to the bot in a group."""
    return [m.text("招待ありがとうございます。グループでは「イベント」「予定」などのコマンドか、"
                   "メンションで話しかけてください。")]


EVENT_HANDLERS: dict[type, Callable[[Ctx, Any], list[m.Message]]] = {
    MessageEvent: on_message,
    PostbackEvent: on_postback,
    FollowEvent: on_follow,
    JoinEvent: on_join,
}


def dispatch(services: Services, event: Event) -> list[m.Message]:
    """Find the handler for the event's type; other types are acknowledged silently."""
    handler = EVENT_HANDLERS.get(type(event))
    if handler is None:
        log.debug("no handler for %s", getattr(event, "type", type(event).__name__))
        return []
    return handler(_ctx(services, event), event)
