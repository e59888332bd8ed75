"""Pushes that are sent once: recipients frozen under a key, 500 a multicast, each chunk with its
own X-Line-Retry-Key, every recipient recorded in the deliveries sheet."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from linebot_app.line_client import retry_key
from linebot_app.messages import Message
from linebot_app.state import State

log = logging.getLogger(__name__)
CHUNK = 500  # LINE's multicast limit
LEASE_SECONDS = 60.0


class Pusher(Protocol):
    """The Messaging API calls a delivery needs."""

    def push(self, to: str, messages: list[Message], key: str) -> bool: ...
    def multicast(self, to: list[str], messages: list[Message], key: str) -> bool: ...


@dataclass(frozen=True)
class Delivery:
    """One message to a set of people; its key makes it happen at most once."""

    key: str
    event_id: str
    kind: str
    recipients: list[str]
    messages: list[Message]
    summary: str


class Deliverer:
    """Plans, sends and resumes deliveries."""

    def __init__(self, state: State, line: Pusher, record: Callable[[dict[str, Any]], None],
                 stamp: Callable[[], str]) -> None:
        self.state, self.line, self.record, self.stamp = state, line, record, stamp

    def deliver(self, delivery: Delivery) -> int:
        """Send unless this key was delivered before; returns recipients reached now."""
        recipients = sorted(set(delivery.recipients))
        if recipients:
            self.state.plan_chunks(delivery.key, _chunks(delivery, recipients))
        return self.resume(delivery.key)

    def resume(self, key: str | None = None) -> int:
        """Send every chunk not yet sent (after a crash, or from another run)."""
        reached = 0
        for chunk in self.state.pending_chunks(key):
            if self.state.claim_chunk(chunk["key"], chunk["n"], LEASE_SECONDS):
                reached += self._send(chunk)
        return reached

    def _send(self, chunk: dict[str, Any]) -> int:
        users, messages = json.loads(chunk["users"]), json.loads(chunk["messages"])
        if len(users) == 1:
            sent = self.line.push(users[0], messages, chunk["retry_key"])
        else:
            sent = self.line.multicast(users, messages, chunk["retry_key"])
        self.state.finish_chunk(chunk["key"], chunk["n"], sent)
        if not sent:
            log.warning("delivery %s chunk %d not sent; it will be retried", chunk["key"], chunk["n"])
            return 0
        for user in users:
            self.record(_row(chunk, user, self.stamp()))
        return len(users)


def _chunks(delivery: Delivery, recipients: list[str]) -> list[dict[str, Any]]:
    body = json.dumps(delivery.messages, ensure_ascii=False)
    return [{"key": delivery.key, "n": n, "retry_key": retry_key(delivery.key, str(n)),
             "event_id": delivery.event_id, "kind": delivery.kind, "summary": delivery.summary,
             "users": json.dumps(recipients[start:start + CHUNK]), "messages": body}
            for n, start in enumerate(range(0, len(recipients), CHUNK))]


def _row(chunk: dict[str, Any], user: str, stamp: str) -> dict[str, Any]:
    return {"id": f"D-{chunk['retry_key']}-{user}", "created_at": stamp,
            "event_id": chunk["event_id"], "kind": chunk["kind"], "user_id": user,
            "summary": chunk["summary"], "retry_key": chunk["retry_key"]}
