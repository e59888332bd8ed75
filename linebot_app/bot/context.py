"""What a feature handler gets: who is asking, from where, and the services to use."""

from __future__ import annotations

import datetime as dt
import random
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from domain.schema import USER_ID, Workbook
from linebot_app.line.delivery import Deliverer
from linebot_app.line.messages import Message
from storage.state import BotState
from storage.store import Store


class Line(Protocol):
    """The Messaging API calls the bot makes (LineClient, or a recording fake)."""

    def reply(self, reply_token: str, messages: list[Message]) -> bool: ...
    def push(self, to: str, messages: list[Message], key: str) -> bool: ...
    def multicast(self, to: list[str], messages: list[Message], key: str) -> bool: ...
    def display_name(self, user_id: str) -> str: ...
    def show_loading(self, chat_id: str, seconds: int) -> bool: ...



def admin_ids(settings: dict[str, str]) -> set[str]:
    """The well-formed LINE user ids in settings.admin_user_ids; blank or malformed ones are
    ignored (check reports them)."""
    listed = unicodedata.normalize("NFKC", settings.get("admin_user_ids", "")).replace("、", ",")
    return {x.strip() for x in listed.split(",") if USER_ID.fullmatch(x.strip())}


def system_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Services:
    """The long-lived parts, built once by create_app."""

    store: Store
    state: BotState
    line: Line
    tz: dt.tzinfo
    clock: Callable[[], dt.datetime] = system_now
    rng: random.Random = field(default_factory=secrets.SystemRandom)  # the lottery's draws
    deliveries: Deliverer = field(init=False)

    def __post_init__(self) -> None:
        self.deliveries = Deliverer(self.state, self.line,
                                    lambda row: self.store.add("deliveries", row), self.stamp)

    @property
    def storage_errors(self) -> tuple[type[BaseException], ...]:
        """What the bot state and the outbox raise when their storage fails."""
        return (*self.state.errors, *self.store.outbox.errors)

    def now(self) -> dt.datetime:
        """Local wall-clock time in the bot's zone, naive (as sheets hold times)."""
        return self.clock().astimezone(self.tz).replace(tzinfo=None)

    def stamp(self) -> str:
        """A created_at / updated_at value: local time, ISO 8601 with the offset."""
        return self.clock().astimezone(self.tz).isoformat(timespec="milliseconds")


@dataclass
class Ctx:
    """One incoming message or postback."""

    user_id: str
    chat: str
    services: Services
    text: str = ""  # the message as typed, line breaks kept (for お知らせ)
    typed: bool = True  # False for postback data, which is not a person's own question
    event_key: str = ""  # the webhook event's id: a redelivery of the event comes with the same
    _org: Workbook | None = field(default=None, repr=False)

    @property
    def org(self) -> Workbook:
        """The organizer sheets, read once per event."""
        if self._org is None:
            self._org = self.services.store.workbook()
        return self._org

    def now(self) -> dt.datetime:
        """Local wall-clock time in the bot's zone, naive (as sheets hold times)."""
        return self.services.now()

    def stamp(self) -> str:
        """A created_at / updated_at value."""
        return self.services.stamp()

    @property
    def is_admin(self) -> bool:
        """Whether this user is listed in settings.admin_user_ids (blank entries never match)."""
        return self.user_id in admin_ids(self.org.settings)
