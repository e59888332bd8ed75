"""Pushes that are sent once: recipients frozen under a key in DATA_DIR (a durable queue), 500 a
multicast, each chunk with its own X-Line-Retry-Key, every recipient recorded in the deliveries
sheet. Webhooks only queue; a worker thread sends, survives restarts and tells the requester."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from linebot_app.line.client import retry_key
from linebot_app.line.messages import Message
from linebot_app.line.messages import text as text_message
from storage.state import DeliveryLog, JobRecord, Plan

log = logging.getLogger(__name__)
CHUNK = 500  # LINE's multicast limit
LEASE_SECONDS = 60.0
RETRY_SECONDS = 30.0  # a chunk LINE refused waits this long before the next try


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


@dataclass(frozen=True)
class Job:
    """Who asked for a delivery and is told by push when it has gone out, and what to call it."""

    id: str
    notify: str
    label: str


class Deliverer:
    """Plans deliveries on the request path; a worker thread (or a cron round) sends them."""

    def __init__(self, state: DeliveryLog, line: Pusher, record: Callable[[dict[str, Any]], None],
                 stamp: Callable[[], str]) -> None:
        self.state, self.line, self.record, self.stamp = state, line, record, stamp
        self.wake = threading.Event()

    def deliver(self, delivery: Delivery) -> int:
        """Queue one delivery unless its key was planned before; returns its recipients."""
        return self.plan([delivery])

    def plan(self, deliveries: list[Delivery], job: Job | None = None) -> int:
        """Queue deliveries whose keys are new, in one step; those with the same messages
        (event, kind and summary too) go out together, 500 people a multicast. Returns how many
        people will be sent to; with a job, its requester is told when they have been."""
        wanted = [d for d in deliveries if d.recipients]
        plan = self.state.plan([d.key for d in wanted],
                               lambda fresh: _plan([d for d in wanted if d.key in fresh], job))
        if plan.chunks:
            self.wake.set()
        return plan.total

    def resume(self, key: str | None = None) -> int:
        """Send every chunk not yet sent (after a crash, or from another run)."""
        reached = 0
        for chunk in self.state.pending_chunks(key):
            if self.state.claim_chunk(chunk["key"], chunk["n"], LEASE_SECONDS):
                reached += self._send(chunk)
        return reached

    def work(self) -> int:
        """One pass of the worker: send what waits, then tell requesters of finished jobs."""
        reached = self.resume()
        for job, notify, label, total in self.state.finished_jobs():
            if not self.state.claim_job(job):
                continue  # another worker tells them
            text = f"{label}を{total}名に送り終えました。"
            if not self.line.push(notify, [text_message(text)], retry_key("job-done", job)):
                self.state.reopen_job(job)
        return reached

    def run(self, stop: threading.Event, every: float | None = None) -> None:
        """The worker: a pass when woken by a plan, and every few seconds (state.poll_seconds)
        for other processes' plans and retries; until stop is set."""
        every = self.state.poll_seconds if every is None else every
        while not stop.is_set():
            try:
                self.work()
            except Exception:  # the worker must outlive one bad pass; chunks stay pending
                log.exception("delivery worker pass failed; it will try again")
            self.wake.wait(every)
            self.wake.clear()

    def start(self) -> threading.Event:
        """Start the worker thread; set the returned event to stop it."""
        stop = threading.Event()
        threading.Thread(target=self.run, args=(stop,), name="delivery-worker",
                         daemon=True).start()
        return stop

    def _send(self, chunk: dict[str, Any]) -> int:
        users, messages = json.loads(chunk["users"]), json.loads(chunk["messages"])
        if len(users) == 1:
            sent = self.line.push(users[0], messages, chunk["retry_key"])
        else:
            sent = self.line.multicast(users, messages, chunk["retry_key"])
        self.state.finish_chunk(chunk["key"], chunk["n"], sent, retry_in=RETRY_SECONDS)
        if not sent:
            log.warning("delivery %s chunk %d not sent; it is tried again in %.0f s",
                        chunk["key"], chunk["n"], RETRY_SECONDS)
            return 0
        for user in users:
            self.record(_row(chunk, user, self.stamp()))
        return len(users)


def _plan(deliveries: list[Delivery], job: Job | None) -> Plan:
    """Chunks for deliveries (the first of each key), grouped by identical messages."""
    firsts: dict[str, Delivery] = {}
    for d in deliveries:
        firsts.setdefault(d.key, d)
    groups: dict[tuple[str, ...], list[Delivery]] = {}
    for d in firsts.values():
        same = (d.event_id, d.kind, d.summary, json.dumps(d.messages, ensure_ascii=False))
        groups.setdefault(same, []).append(d)
    chunks, total = [], 0
    for members in groups.values():
        first = members[0]
        key = first.key if len(members) == 1 else f"{first.key}+{len(members) - 1}"
        recipients = sorted({u for d in members for u in d.recipients})
        chunks += _chunks(dataclasses.replace(first, key=key), recipients)
        total += len(recipients)
    record = JobRecord(job.id, job.notify, job.label, total, sorted({c["key"] for c in chunks})) \
        if job and chunks else None
    return Plan(chunks, record, total)


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
