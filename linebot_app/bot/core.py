"""The bot core, without Flask: verify, parse, drop redeliveries, dispatch each event, report errors."""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from linebot.v3.webhooks import (
    Event,
    FollowEvent,
    JoinEvent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
)

from linebot_app.bot.commands import handle_text, starts_with_command
from linebot_app.bot.context import Ctx, Services
from linebot_app.features import facilities
from linebot_app.line import messages as m
from linebot_app.logs import mask
from storage.state import EventBusy

log = logging.getLogger(__name__)
HINT = "テキストで話しかけてください。「ヘルプ」で使い方を表示します。"
LOADING_AFTER_SECONDS = 1.0  # an answer slower than this shows LINE's loading animation
LOADING_SECONDS = 20  # how long it may show (5 to 60, a multiple of 5); the reply ends it
MAX_DEPTH = 32  # LINE's events nest about 6 deep; anything far deeper is not from LINE

ErrorHook = Callable[[BaseException, Event], None]


class BadRequest(Exception):
    """A webhook body that cannot be used; the message says why (sent back with 400)."""


class InvalidSignature(BadRequest):
    """The X-Line-Signature header does not match the body."""


class DeliverAgain(Exception):
    """LINE gets a 5xx with this message and delivers the event again later."""


class StorageFailed(DeliverAgain):
    """The bot's own storage failed (its databases in DATA_DIR, or Firestore): LINE gets a 5xx
    and delivers the event again, and /healthz fails until an event is handled again."""


def log_error(error: BaseException, event: Event) -> None:
    """The production error hook: log the failure with its traceback and go on."""
    log.error("event %s (%s) failed", getattr(event, "webhook_event_id", None),
              getattr(event, "type", "?"), exc_info=error)


@dataclass
class Bot:
    """The channel secret, the services, how to reply, and where handler failures go."""

    secret: bytes
    services: Services
    reply: Callable[[str, list[m.Message]], Any]
    on_error: ErrorHook = log_error
    storage_fault: str = ""  # the last local storage failure, until an event succeeds again

    def handle(self, body: bytes, signature: str) -> int:
        """Verify and handle one webhook delivery; returns how many events were handled."""
        events = parse(self.secret, body, signature)
        for event in events:
            self.handle_event(event)
        return len(events)

    def handle_event(self, event: Event) -> None:
        """Handle one event; a failure goes to on_error and the rest of the batch goes on,
        except a failure of local storage (StorageFailed) or an event another instance is
        handling now (DeliverAgain): then LINE must deliver it again."""
        event_id = getattr(event, "webhook_event_id", None) or None  # "" is treated as absent
        try:
            if event_id and not self.services.state.claim_event(event_id):
                log.info("redelivered event %s skipped", event_id)
                return
            loading = self._loading_after(event)
            try:
                replies = dispatch(self.services, event)
            finally:
                if loading:
                    loading.cancel()
            token = getattr(event, "reply_token", None)
            if replies and token:
                self.reply(token, replies)
        except EventBusy as err:  # from the claim: nothing was done, nothing to release
            log.info("%s; LINE will deliver it again", err)
            raise DeliverAgain(f"{err}; deliver again later") from err
        except self.services.storage_errors as err:
            self._storage_failed(err, event_id)
        except Exception as err:  # one door for every handler failure
            self.on_error(err, event)
        self._finished(event_id)
        self.storage_fault = ""

    def _finished(self, event_id: str | None) -> None:
        """Record the event as handled (its claim ends); a failure here only means that a
        redelivery coming after the claim ran out is handled again."""
        if not event_id:
            return
        try:
            self.services.state.finish_event(event_id)
        except self.services.storage_errors as err:
            log.warning("event %s was handled but could not be recorded so: %s", event_id,
                        type(err).__name__)

    def _loading_after(self, event: Event) -> Alarm | None:
        """Show LINE's loading animation if the answer to a person in a 1:1 chat takes more
        than LOADING_AFTER_SECONDS (the reply ends the animation)."""
        source = getattr(event, "source", None)
        user = getattr(source, "user_id", None)
        if getattr(source, "type", "") != "user" or not user or not getattr(
                event, "reply_token", None):
            return None
        return ALARMS.after(LOADING_AFTER_SECONDS, self.services.line.show_loading,
                            user, LOADING_SECONDS)

    def _storage_failed(self, err: BaseException, event_id: str | None) -> None:
        self.storage_fault = f"{type(err).__name__}: {err}"
        log.error("the bot's storage failed; LINE will deliver event %s again: %s",
                  event_id, self.storage_fault)
        if event_id:
            try:
                self.services.state.unclaim_event(event_id)
            except self.services.storage_errors:
                log.error("event %s stays marked handled: its redelivery is skipped", event_id)
        raise StorageFailed(self.storage_fault) from err


class Alarm:
    """A call due at a time, unless cancelled first."""

    __slots__ = ("due", "call", "args", "cancelled")

    def __init__(self, due: float, call: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.due, self.call, self.args, self.cancelled = due, call, args, False

    def __lt__(self, other: Alarm) -> bool:
        return self.due < other.due

    def cancel(self) -> None:
        self.cancelled = True


class Alarms:
    """One thread per process that waits for the calls due later; a call that comes due runs on
    a thread of its own. Cheaper than a timer thread per event, since nearly every event is
    answered and its alarm cancelled first."""

    def __init__(self) -> None:
        self._heap: list[Alarm] = []
        self._cond = threading.Condition()
        self._pid = 0  # the waiting thread's process (gunicorn forks workers)

    def after(self, seconds: float, call: Callable[..., Any], *args: Any) -> Alarm:
        alarm = Alarm(time.monotonic() + seconds, call, args)
        with self._cond:
            heapq.heappush(self._heap, alarm)
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._wait, name="alarms", daemon=True).start()
            elif self._heap[0] is alarm:
                self._cond.notify()
        return alarm

    def _wait(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0].due > time.monotonic():
                    self._cond.wait(self._heap[0].due - time.monotonic() if self._heap else None)
                alarm = heapq.heappop(self._heap)
            if not alarm.cancelled:
                threading.Thread(target=alarm.call, args=alarm.args, daemon=True).start()


ALARMS = Alarms()


def verify(secret: bytes, body: bytes, signature: str) -> None:
    """LINE's signature: base64 of HMAC-SHA256 over the raw body bytes."""
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(expected, signature.encode("ascii", "replace")):
        raise InvalidSignature("bad signature" if signature else "missing signature")


def parse(secret: bytes, body: bytes, signature: str) -> list[Event]:
    """Signed bytes to SDK events; one event that does not parse does not sink the batch."""
    verify(secret, body, signature)
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise BadRequest("body is not UTF-8") from err
    except RecursionError as err:
        raise BadRequest(f"body nests deeper than {MAX_DEPTH} levels") from err
    except json.JSONDecodeError as err:
        raise BadRequest(f"body is not JSON: {err.msg} at {err.pos}") from err
    except ValueError as err:  # a number of over 4,300 digits
        raise BadRequest(f"body holds a number too long to read ({str(err)[:60]})") from err
    if depth(payload) > MAX_DEPTH:
        raise BadRequest(f"body nests deeper than {MAX_DEPTH} levels")
    if SURROGATE_ESCAPE.search(body):  # (a raw surrogate is not valid UTF-8: only \uD8xx)
        payload = cleaned(payload)
    raw = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(raw, list):
        raise BadRequest("no events list")
    return [event for event in map(_event, raw) if event is not None]


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (iteratively, no recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, level = todo.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                todo += [(child, level + 1) for child in (
                    node.values() if isinstance(node, dict) else node)]
    return deepest


LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON may escape half of a UTF-16 pair
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")  # how it arrives in the body


def cleaned(value: Any) -> Any:
    """The parsed body with every text made valid Unicode: a lone surrogate becomes U+FFFD
    (no text that cannot be encoded reaches a handler, the sheet or a log)."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [cleaned(v) for v in value]
    if isinstance(value, dict):
        return {cleaned(k): cleaned(v) for k, v in value.items()}
    return value


def _event(item: Any) -> Event | None:
    try:
        return Event.from_dict(item)
    except (ValueError, TypeError, KeyError, AttributeError):
        log.warning("skipped a webhook event that does not parse")
        return None


def _ctx(services: Services, event: Event) -> Ctx:
    source = event.source
    user_id = getattr(source, "user_id", None) or ""
    return Ctx(user_id=user_id, chat=getattr(source, "type", "user") or "user", services=services,
               event_key=getattr(event, "webhook_event_id", None) or "")


def on_message(ctx: Ctx, event: MessageEvent) -> list[m.Message]:
    """Text goes to the commands; a location to the facilities; other kinds get a hint 1:1."""
    message = event.message
    if isinstance(message, LocationMessageContent) and ctx.chat == "user":
        return facilities.on_location(ctx, message.latitude, message.longitude)
    if not isinstance(message, TextMessageContent):
        return [m.text(HINT)] if ctx.chat == "user" else []
    text, mentioned = strip_mention(message)
    if ctx.chat != "user" and not (mentioned or starts_with_command(text)):
        return []
    log.debug("text from %s in %s chat", mask(ctx.user_id), ctx.chat)
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
    ctx.typed = False
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
