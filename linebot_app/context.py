"""What a feature handler gets: who is asking, from where, and the services to use."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from linebot_app.messages import Message
from linebot_app.state import State
from sheets.dates import fold
from sheets.schema import Organizer
from sheets.store import Store


class Line(Protocol):
    """The Messaging API calls features may make (LineClient, or a recording fake)."""

    def push(self, to: str, messages: list[Message], key: str) -> bool: ...
    def display_name(self, user_id: str) -> str: ...


def system_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Services:
    """The long-lived parts, built once by create_app."""

    store: Store
    state: State
    line: Line
    tz: dt.tzinfo
    clock: Callable[[], dt.datetime] = system_now


@dataclass
class Ctx:
    """One incoming message or postback."""

    user_id: str
    chat: str
    services: Services
    _org: Organizer | None = field(default=None, repr=False)

    @property
    def org(self) -> Organizer:
        """The organizer sheets, read once per event."""
        if self._org is None:
            self._org = self.services.store.organizer()
        return self._org

    def now(self) -> dt.datetime:
        """Local wall-clock time in the bot's zone, naive (as sheets hold times)."""
        return self.services.clock().astimezone(self.services.tz).replace(tzinfo=None)

    def stamp(self) -> str:
        """A created_at / updated_at value: local time, ISO 8601 with the offset."""
        return self.services.clock().astimezone(self.services.tz).isoformat(timespec="milliseconds")

    @property
    def is_admin(self) -> bool:
        """Whether this user is listed in settings.admin_user_ids."""
        listed = self.org.settings.get("admin_user_ids", "")
        return fold(self.user_id) in {fold(x) for x in listed.replace("、", ",").split(",")}
