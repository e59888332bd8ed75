"""What STATE_BACKEND=firestore costs in Firestore's billing units: documents read, written and
deleted per message, per registration and per idle minute, counted at the client library's
RPCs on Google's emulator, and set against the free daily quota."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs
from linebot_app.simulator.platform import sign

SECRET, TOKEN = "bench-channel-secret", "bench-access-token"
FREE = {"reads": 50_000, "writes": 20_000, "deletes": 20_000}  # Firestore's free tier, a day
INSTANCES = 3  # every instance hears each row that waits once (the listener)


@dataclass
class Tally:
    """Billable document operations seen so far."""

    reads: int = 0
    writes: int = 0
    deletes: int = 0
    heard: int = 0  # documents a listener delivered (billed as reads)

    def minus(self, other: Tally) -> Tally:
        return Tally(self.reads - other.reads, self.writes - other.writes,
                     self.deletes - other.deletes, self.heard - other.heard)

    def copy(self) -> Tally:
        return Tally(self.reads, self.writes, self.deletes, self.heard)


def count_calls(tally: Tally) -> None:
    """Count documents at the RPCs the client library makes (reads: one per document returned,
    at least one per query; writes and deletes: one per document in a commit)."""
    from google.cloud.firestore_v1.services.firestore.client import FirestoreClient

    from storage.firestore.outbox import FirestoreOutbox

    lock = threading.Lock()

    def add(field: str, n: int) -> None:
        with lock:
            setattr(tally, field, getattr(tally, field) + n)

    def wrap(name: str, counted: Callable[[Any, Any], Any]) -> None:
        original = getattr(FirestoreClient, name)

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            return counted(original(self, *args, **kwargs), kwargs.get("request"))
        setattr(FirestoreClient, name, call)

    def commit(response: Any, request: Any) -> Any:
        writes = request["writes"] if isinstance(request, dict) else request.writes
        deletes = sum(1 for w in writes if w.delete)
        add("deletes", deletes)
        add("writes", len(writes) - deletes)
        return response

    def stream(responses: Any, request: Any) -> Any:
        items = list(responses)  # whether or not the caller reads them all, they are billed
        found = sum(1 for item in items if getattr(item, "document", None) or getattr(
            item, "found", None) or getattr(item, "missing", None))
        add("reads", max(found, 1))
        return iter(items)

    wrap("commit", commit)
    wrap("run_query", stream)
    wrap("batch_get_documents", stream)
    wrap("run_aggregation_query", lambda response, request: (add("reads", 1), response)[1])
    heard = FirestoreOutbox._heard

    def listened(self: Any, docs: Any, changes: Any, read_time: Any) -> None:
        add("heard", sum(1 for c in changes if c.type.name in ("ADDED", "MODIFIED")))
        heard(self, docs, changes, read_time)
    FirestoreOutbox._heard = listened  # type: ignore[method-assign]


def _event(user: str, text: str, n: int) -> bytes:
    event = {"type": "message", "mode": "active", "timestamp": 1767225600000,
             "source": {"type": "user", "userId": user}, "webhookEventId": f"COST{n:022d}",
             "deliveryContext": {"isRedelivery": False}, "replyToken": f"{n:032x}",
             "message": {"id": str(n), "type": "text", "text": text, "quoteToken": "q"}}
    return json.dumps({"destination": "U" + "f" * 32, "events": [event]},
                      ensure_ascii=False).encode()


def run(count: int = 30) -> None:
    """Measure, with one instance in process, and print the costs and the arithmetic."""
    missing = procs.firestore_missing()
    if missing:
        print(f"\nFirestore costs: not measured ({missing})")
        return
    with tempfile.TemporaryDirectory(prefix="bench-costs-") as tmp:
        work = Path(tmp)
        fs_port, sim_port = procs.free_port(), procs.free_port()
        started = [procs.firestore_emulator(fs_port, work / "firestore.log"),
                   procs.simulator(sim_port, fs_port, SECRET, TOKEN, work / "sim.log")]
        try:
            per = _measure(work, fs_port, sim_port, count)
        finally:
            for proc in reversed(started):
                procs.stop(proc)
    _report(per, count)


def _measure(work: Path, fs_port: int, sim_port: int, count: int) -> dict[str, Tally]:
    from linebot_app import create_app
    from linebot_app.config import Settings
    from storage.sheets.sample import create_sample_workbook

    create_sample_workbook(work / "seminar.xlsx")
    env = {**procs.firestore_env(f"127.0.0.1:{fs_port}", "costs"), "SCHEDULER": "off",
           "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
           "LINE_API_BASE_URL": f"http://127.0.0.1:{sim_port}/simulator/line",
           "WORKBOOK_PATH": str(work / "seminar.xlsx"), "DATA_DIR": str(work / "var")}
    os.environ["FIRESTORE_EMULATOR_HOST"] = env["FIRESTORE_EMULATOR_HOST"]
    logging.getLogger("linebot_app").setLevel(logging.ERROR)  # the bench users have no profile
    tally = Tally()
    count_calls(tally)
    app = create_app(Settings.from_env(env))
    services = app.extensions["seminar_bot"].services
    client, n = app.test_client(), [0]

    def say(user: str, text: str) -> None:
        n[0] += 1
        body = _event(user, text, n[0])
        answer = client.post("/callback", data=body, headers={"X-Line-Signature": sign(SECRET, body)})
        assert answer.status_code == 200, answer.status_code

    users = [f"U{k:032x}" for k in range(1, count + 1)]
    for user in users:  # warm: each user has talked to the bot and consented once
        say(user, "ヘルプ")
        services.state.give_consent(user)
    services.store.drain(seconds=10)
    phases = {}
    for name, text in (("message (イベント)", "イベント"), ("registration", "参加登録 E2 参加 初心者")):
        before = tally.copy()
        for user in users:
            say(user, text)
        services.store.drain(seconds=10)  # its share of the flush: done marks, the lease
        phases[name] = before
    from linebot_app.ops import scheduler

    scheduler.tick(services)  # the first round records each event's version
    before = tally.copy()
    scheduler.tick(services)  # one minute round (cron's /tasks/remind), nothing new to send
    services.deliveries.work()  # one idle pass of the delivery worker (every 60 s)
    phases["idle minute"] = before
    services.store.close()
    marks = list(phases) + [None]
    totals = {name: (tally if nxt is None else phases[nxt]).minus(phases[name])
              for name, nxt in zip(marks, marks[1:], strict=False) if name}
    return totals


def _report(per: dict[str, Tally], count: int) -> None:
    print(f"\nFirestore costs (STATE_BACKEND=firestore, one instance, {count} users each; "
          "counted at the client's RPCs on Google's emulator)\n")
    print("| operation | reads | writes | deletes | reads heard by each other instance |")
    print("|---|---|---|---|---|")
    one = {}
    for name, t in per.items():
        scale = 1 if name == "idle minute" else count
        one[name] = (t.reads / scale, t.writes / scale, t.deletes / scale, t.heard / scale)
        print(f"| {name} | {one[name][0]:.1f} | {one[name][1]:.1f} | {one[name][2]:.1f} | "
              f"{one[name][3]:.1f} |")
    reads, writes, _, heard = one["registration"]
    idle = one["idle minute"]
    per_day_idle = (idle[0] * 1440, idle[1] * 1440)
    fleet_reads = reads + heard * (INSTANCES - 1)
    print(f"\nidle, per day (a round a minute, one instance): {per_day_idle[0]:.0f} reads, "
          f"{per_day_idle[1]:.0f} writes")
    left = FREE["reads"] - per_day_idle[0], FREE["writes"] - per_day_idle[1]
    free_regs = min(left[0] / fleet_reads if fleet_reads else 1e9, left[1] / writes)
    msg_reads, msg_writes = one["message (イベント)"][:2]
    free_msgs = min(left[0] / msg_reads if msg_reads else 1e9, left[1] / msg_writes)
    print(f"free tier ({FREE['reads']:,} reads, {FREE['writes']:,} writes a day), after the idle "
          f"cost, with {INSTANCES} instances: about {free_regs:,.0f} registrations a day, or "
          f"{free_msgs:,.0f} messages a day")


if __name__ == "__main__":
    run()
