"""The bot on Firestore (Google's emulator): two apps on one namespace play two instances; a
Firestore outage only delays answers; the last good copy of the sheets is shared."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from linebot_app.simulator.platform import sign
from linebot_app.wiring import build_store
from storage.backend import BackendError
from tests.conftest import (
    SECRET,
    BotHarness,
    Emu,
    build_harness,
    eventually,
    free_port,
    google_env,
    make_settings,
    make_store,
    text_event,
)

U1, U2, U3 = "U" + "1" * 32, "U" + "2" * 32, "U" + "3" * 32
REGISTER = "参加登録 E2 参加 初心者"


@pytest.fixture
def pair(tmp_path: Path, firestore_env: dict[str, str]) -> Iterator[tuple[BotHarness, BotHarness]]:
    """Two bots on one workbook and one Firestore namespace, with DATA_DIRs of their own."""
    a = build_harness(tmp_path, **firestore_env, DATA_DIR=str(tmp_path / "var-a"))
    b = build_harness(tmp_path, **firestore_env, DATA_DIR=str(tmp_path / "var-b"))
    for bot in (a, b):
        for user in (U1, U2, U3):
            bot.consent(user)
    yield a, b


def _capacity(bots: tuple[BotHarness, ...], seats: int) -> None:
    import openpyxl

    wb = openpyxl.load_workbook(bots[0].settings.workbook_path)
    wb["events"]["H3"] = seats  # E2's participant capacity
    wb.save(bots[0].settings.workbook_path)
    for bot in bots:
        bot.store.reload()


def test_a_registration_on_one_instance_shows_on_the_other(pair) -> None:
    a, b = pair
    assert "参加確定です" in a.say(REGISTER, user=U1)[0]
    assert "E2" not in b.say("登録確認", user=U2)[0]
    shown = eventually(lambda: "ハンズオン" in b.say("登録確認", user=U1)[0], timeout=5)
    assert shown
    assert "すでに登録済み" in b.say(REGISTER, user=U1)[0]  # and nothing is added


def test_a_cancel_on_one_instance_promotes_a_person_waiting_on_the_other(pair) -> None:
    a, b = pair
    _capacity(pair, 1)
    a.say(REGISTER, user=U1)
    assert "キャンセル待ち(1番目)" in a.say(REGISTER, user=U2)[0]
    assert "キャンセルしました" in b.say("キャンセル E2", user=U1)[0]
    assert any("繰り上げ" in t for t in b.line.received(U2))
    assert "キャンセル待ち" not in "".join(a.line.received(U2) + b.line.received(U2)[1:])
    assert "参加確定です" not in a.say(REGISTER, user=U3)[0]  # the seat went to U2


def test_a_survey_goes_on_where_the_other_instance_left_it(pair) -> None:
    from tests.test_surveys import TELEMED

    a, b = pair
    a.say("アンケート telemed", user=U1)
    for n, answer in enumerate(TELEMED):
        (a if n % 2 else b).say(answer, user=U1)
    assert "ありがとう" in b.say("送信", user=U1)[0]
    a.store.drain(seconds=10)
    b.store.drain(seconds=10)
    import openpyxl

    rows = list(openpyxl.load_workbook(a.settings.workbook_path)["answers_telemed"].iter_rows(
        values_only=True))
    assert len(rows) == 2 and "みなと中央クリニック" in rows[1]


# ---- a Firestore outage --------------------------------------------------------------------------
class Gate:
    """A TCP relay between the bot and Firestore that can be shut, as an outage."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_port()
        self.open = True
        self.conns: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def shut(self) -> None:
        """Every connection drops, and new ones are refused."""
        self.open = False
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns = []

    def close(self) -> None:
        self.shut()
        self.server.close()


@pytest.fixture
def gated(tmp_path: Path, firestore_env: dict[str, str], monkeypatch) -> Iterator[tuple[Any, Gate]]:
    gate = Gate(firestore_env["FIRESTORE_EMULATOR_HOST"])
    host = f"127.0.0.1:{gate.port}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)
    bot = build_harness(tmp_path, **{**firestore_env, "FIRESTORE_EMULATOR_HOST": host,
                                     "FIRESTORE_TIMEOUT_SECONDS": "1"})
    bot.consent(U1)
    yield bot, gate
    gate.close()


def _deliver(bot: BotHarness, event: dict[str, Any]) -> int:
    """LINE's webhook call, and nothing else of the harness (no delivery worker pass)."""
    body = json.dumps({"destination": "U" + "f" * 32, "events": [event]}).encode()
    return bot.client.post("/callback", data=body, headers={
        "X-Line-Signature": sign(SECRET, body), "Content-Type": "application/json"}).status_code


def test_a_firestore_outage_answers_503_and_the_redelivery_loses_nothing(gated, caplog) -> None:
    bot, gate = gated
    bot.store.reload()
    gate.shut()
    event = text_event(REGISTER, user=U1)
    assert _deliver(bot, event) == 503  # LINE delivers it again later
    assert bot.client.get("/healthz").status_code == 503
    gate.open = True
    again = {**event, "deliveryContext": {"isRedelivery": True}}
    state, later = bot.app.extensions["seminar_bot"].services.state, [0.0]
    state.clock = lambda: time.time() + later[0]

    def redelivered() -> bool:  # LINE tries again later, each time later than the last
        later[0] += 20  # (a claim whose outcome the outage hid is free after CLAIM_SECONDS)
        return _deliver(bot, again) == 200

    assert eventually(redelivered, timeout=20, every=0.5)
    assert "参加確定です" in bot.line.last_texts()[0]
    assert bot.client.get("/healthz").status_code == 200

    def landed() -> bool:  # the outage only delays the write: a lease or a channel it left
        bot.store.drain(seconds=5)  # behind runs out (LEASE_SECONDS, gRPC's reconnect backoff)
        return [r.user_id for r in bot.store.reload().registrations] == [U1]

    assert eventually(landed, timeout=45, every=1)


def test_a_listener_stopped_while_firestore_is_unreachable_does_not_spin(gated) -> None:
    bot, gate = gated
    bot.store.outbox.listen()
    threads = threading.active_count()
    gate.close()  # Firestore unreachable...
    bot.store.close()  # ...when the instance stops (the library reopens the stream at once)
    time.sleep(2)
    assert threading.active_count() < threads + 20


def test_a_claim_an_instance_never_finished_is_taken_once_it_runs_out(
        tmp_path: Path, firestore_env: dict[str, str]) -> None:
    from storage.firestore.client import Firestore
    from storage.firestore.state import CLAIM_SECONDS, FirestoreState
    from storage.state import EventBusy

    now = [1_800_000_000.0]
    config = make_settings(tmp_path, **firestore_env).firestore
    a, b = (FirestoreState(Firestore(config), clock=lambda: now[0]) for _ in range(2))
    assert a.claim_event("ev") is True  # ...and instance a dies before it finishes
    with pytest.raises(EventBusy):  # LINE's redelivery while a might still be at it
        b.claim_event("ev")
    now[0] += CLAIM_SECONDS + 1
    assert b.claim_event("ev") is True  # the next one is handled
    b.finish_event("ev")
    now[0] += CLAIM_SECONDS + 1
    assert a.claim_event("ev") is False  # handled: never again


def test_a_redelivery_while_another_instance_handles_the_event_is_asked_to_come_again(
        pair) -> None:
    a, b = pair
    event = text_event(REGISTER, user=U1)
    state = a.app.extensions["seminar_bot"].services.state
    assert state.claim_event(event["webhookEventId"])  # a is at it (or died at it)
    again = {**event, "deliveryContext": {"isRedelivery": True}}
    body = json.dumps({"destination": "U" + "f" * 32, "events": [again]}).encode()
    res = b.client.post("/callback", data=body, headers={"X-Line-Signature": sign(SECRET, body)})
    assert res.status_code == 503 and "being handled by another instance" in res.text
    assert b.line.replies == [] and b.store.registrations() == []
    state.finish_event(event["webhookEventId"])  # a finished after all
    assert _deliver(b, again) == 200
    assert b.line.replies == [] and b.store.registrations() == []  # skipped: handled once


def test_a_failure_after_the_claim_gives_the_redelivery_a_full_answer(pair, monkeypatch) -> None:
    from google.api_core.exceptions import ServiceUnavailable

    a, _ = pair
    seats, calls = a.store.seats, []
    book = seats.book

    def once(*args: Any, **kw: Any) -> Any:  # Firestore fails once, mid-way through handling
        calls.append(1)
        if len(calls) == 1:
            raise ServiceUnavailable("Firestore is restarting")
        return book(*args, **kw)

    monkeypatch.setattr(seats, "book", once)
    event = text_event(REGISTER, user=U1)
    assert _deliver(a, event) == 503
    again = {**event, "deliveryContext": {"isRedelivery": True}}
    assert _deliver(a, again) == 200
    assert "参加確定です" in a.line.last_texts()[0]


def test_a_booking_whose_answer_was_lost_gets_the_same_answer_on_the_redelivery(
        pair, monkeypatch) -> None:
    from google.api_core.exceptions import ServiceUnavailable

    a, _ = pair
    seats, calls = a.store.seats, []
    book = seats.book

    def lost(*args: Any, **kw: Any) -> Any:  # the commit lands, its answer does not (a timeout)
        calls.append(book(*args, **kw))
        if len(calls) == 1:
            raise ServiceUnavailable("the connection dropped after the commit")
        return calls[-1]

    monkeypatch.setattr(seats, "book", lost)
    event = text_event(REGISTER, user=U1)
    assert _deliver(a, event) == 503
    assert _deliver(a, {**event, "deliveryContext": {"isRedelivery": True}}) == 200
    assert "参加確定です" in a.line.last_texts()[0]  # what the first delivery would have said
    assert _deliver(a, text_event(REGISTER, user=U1)) == 200  # the person asks again
    assert "すでに登録済み" in a.line.last_texts()[0]
    assert [r.user_id for r in a.store.registrations()] == [U1]


def test_check_says_so_when_firestore_refuses_a_write(tmp_path: Path, firestore_env: dict[str, str],
                                                      monkeypatch) -> None:
    from google.api_core.exceptions import PermissionDenied
    from google.cloud.firestore_v1.document import DocumentReference

    from linebot_app.ops.check_online import check_state
    from linebot_app.wiring import build_outbox

    settings = make_settings(tmp_path, **firestore_env)
    outbox = build_outbox(settings)
    assert check_state(settings, outbox).ok

    def refuse(*args: Any, **kw: Any) -> Any:
        raise PermissionDenied("the service account may only read")

    monkeypatch.setattr(DocumentReference, "set", refuse)
    found = check_state(settings, outbox)
    assert not found.ok and "Firestore に書き込めません" in found.what


# ---- the last good copy of the sheets, kept in Firestore ---------------------------------------
def test_a_cold_instance_answers_from_the_copy_another_instance_kept(
        tmp_path: Path, emu: Emu, firestore_env: dict[str, str]) -> None:
    settings = make_settings(tmp_path, **google_env(emu), **firestore_env)
    warm = make_store(settings, snapshot=None)  # init-sheet, then an instance that keeps copies
    from storage.firestore.client import FirestoreSnapshot

    warm.snapshot = FirestoreSnapshot(warm.outbox.fs)
    good = warm.reload()
    emu.faults(error_seconds=60, status=503)  # Sheets is down when the next instance starts
    cold = build_store(settings, snapshot=FirestoreSnapshot(warm.outbox.fs))
    with pytest.raises(BackendError):
        cold.backend.read()
    org = cold.workbook()
    assert cold.from_snapshot and org.events == good.events and org.faq == good.faq


def test_the_copy_in_firestore_is_rewritten_only_when_the_sheets_change(
        tmp_path: Path, firestore_env: dict[str, str]) -> None:
    from storage.firestore.client import FirestoreSnapshot

    settings = make_settings(tmp_path, **firestore_env)
    store = make_store(settings)
    store.snapshot = FirestoreSnapshot(store.outbox.fs)
    store.reload()
    head = store.outbox.fs.doc("meta", "snapshot")
    first = head.get().update_time
    other = make_store(settings)  # another instance reads the same sheets
    other.snapshot = FirestoreSnapshot(other.outbox.fs)
    other.reload()
    assert head.get().update_time == first
    store.add("feedback", {"id": "F1", "event_id": "E2", "rating": "5"})
    store.flush()
    store.reload()
    assert head.get().update_time > first
    assert len(list(store.outbox.fs.col("meta").list_documents())) == 3  # head, part, lease


def test_a_new_lease_holder_checks_the_sheet_before_writing_rows_it_still_thinks_wait(
        tmp_path: Path, emu: Emu, firestore_env: dict[str, str]) -> None:
    from storage.firestore.records import LEASE_SECONDS

    now = [1_800_000_000.0]
    settings = make_settings(tmp_path, **google_env(emu), **firestore_env)
    a, b = (make_store(settings, clock=lambda: now[0]) for _ in range(2))
    for store, n in ((a, 1), (b, 2)):
        store.add("registrations", {"id": f"R{n}", "event_id": "E2", "user_id": U1,
                                    "status": "confirmed", "role": "participant"})
    for store in (a, b):  # each has heard both rows wait
        eventually(lambda s=store: s.outbox.has_pending() and len(s.outbox.pending()) == 2,
                   timeout=10)
    assert a.flush() == 2  # a holds the lease and writes both rows
    eventually(lambda: not b.outbox.has_pending(), timeout=5)
    with b.outbox._lock:  # ...but b's listener is slow to hear so (an overloaded instance)
        for known in b.outbox._order:
            known.done_at = None
            b.outbox._waiting.add(known.id)
    now[0] += LEASE_SECONDS + 1  # a stops renewing the lease
    assert b.flush() == 2  # b takes the lease over and flushes what it thinks waits
    assert sorted(r["id"] for r in emu.rows("registrations")) == ["R1", "R2"]  # each once


class _Snap:
    """What the listener hands over for one waiting entry (id, fields, commit time)."""

    def __init__(self, entry_id: str, at: float) -> None:
        self.id, self.create_time = entry_id, at
        self.data = {"sheet": "registrations", "op": "append", "row_id": f"R-{entry_id}",
                     "payload": "{}", "created": at, "attempts": 0, "pending": True}

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)

    def get(self, key: str) -> Any:
        return self.data.get(key)


def test_what_an_instance_believes_waits_follows_the_latest_listener_report() -> None:
    from storage.config import FirestoreConfig
    from storage.firestore.client import Firestore
    from storage.firestore.outbox import FirestoreOutbox

    outbox = FirestoreOutbox(Firestore(FirestoreConfig()), clock=lambda: 100.0)
    e1, e2 = _Snap("e1", 1.0), _Snap("e2", 2.0)
    outbox._heard([e1, e2], [], 3.0)
    assert [e.row_id for e in outbox.pending()] == ["R-e1", "R-e2"]
    outbox._heard([e2], [], 4.0)  # e1 was written
    assert [e.row_id for e in outbox.pending()] == ["R-e2"]
    outbox._heard([e1, e2], [], 5.0)  # ...no: a report apart from the last (a reset) has it
    assert [e.row_id for e in outbox.pending()] == ["R-e1", "R-e2"]
    outbox._written(outbox._known["e2"], 7.0)  # this instance's flush wrote e2 at 7
    outbox._heard([e1, e2], [], 6.0)  # a report taken before that, arriving late
    assert [e.row_id for e in outbox.pending()] == ["R-e1"]


def test_threads_of_one_instance_never_flush_at_once(
        tmp_path: Path, emu: Emu, firestore_env: dict[str, str]) -> None:
    settings = make_settings(tmp_path, **google_env(emu), **firestore_env)
    store = make_store(settings)
    for n in range(40):
        store.add("registrations", {"id": f"R{n:02d}", "event_id": "E2", "user_id": U1,
                                    "status": "confirmed", "role": "participant"})
    barrier = threading.Barrier(8)

    def flush() -> None:  # each request thread flushes when it is done (gunicorn's after-hook)
        barrier.wait(timeout=10)
        store.flush(now=True)

    threads = [threading.Thread(target=flush) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    store.drain(seconds=10)
    ids = [r["id"] for r in emu.rows("registrations")]
    assert sorted(ids) == [f"R{n:02d}" for n in range(40)]  # each once


def test_the_lease_holder_does_not_rewrite_a_row_its_listener_has_not_reported_yet(
        tmp_path: Path, firestore_env: dict[str, str]) -> None:
    now = [1_800_000_000.0]
    settings = make_settings(tmp_path, **firestore_env)
    a, b = (make_store(settings, clock=lambda: now[0]) for _ in range(2))
    a.reload()  # a holds the lease and compares the sheet with the ledger
    with a.outbox._lock:  # a's listener is held up (an instance under load)...
        a.outbox._ledger_fresh = False
        b.add("registrations", {"id": "R5", "event_id": "E2", "user_id": U1,
                                "status": "confirmed", "role": "participant"})
        now[0] += 5
        a.reload()  # ...when it reads the sheet, which cannot hold b's row yet
        assert a.outbox.pending() == []  # nothing written again


def test_a_row_whose_commit_answer_was_lost_is_written_though_the_listener_misses_it(
        tmp_path: Path, firestore_env: dict[str, str], monkeypatch) -> None:
    from google.api_core.exceptions import DeadlineExceeded

    store = make_store(make_settings(tmp_path, **firestore_env))
    outbox = store.outbox
    outbox.has_pending()  # the listener has reported once, and reports nothing more (its
    outbox.close()        # stream is down, as after an outage)
    monkeypatch.setattr(outbox, "listen", lambda: None)
    real_batch = outbox.fs.batch

    def batch() -> Any:
        made = real_batch()
        commit = made.commit

        def landed_but_lost(**kw: Any) -> Any:
            commit(**kw)
            raise DeadlineExceeded("the answer to the commit was lost")

        made.commit = landed_but_lost
        return made

    monkeypatch.setattr(outbox.fs, "batch", batch)
    row = {"id": "F1", "created_at": "2026-12-01T10:00:00.000+09:00", "event_id": "E2",
           "user_id": U1, "rating": "5", "impression": "", "use_cases": "", "challenges": ""}
    with pytest.raises(DeadlineExceeded):
        store.add("feedback", row)
    monkeypatch.setattr(outbox.fs, "batch", real_batch)
    assert store.drain(seconds=10)
    assert [r["id"] for r in store.reload().bot_rows["feedback"]] == ["F1"]


def test_registration_changes_are_counted_across_instances(pair) -> None:
    from tests.test_organizer import cycle

    a, b = pair
    said = cycle([a, b], U1, 11)  # consent first, on one of them
    assert "少しの間止めています" in said[-1] and not any("止めています" in s for s in said[:-1])
    assert len([r for r in a.store.registrations() if r.user_id == U1]) == 5


def test_a_person_waiting_cannot_check_in_on_any_instance(pair) -> None:
    import datetime as dt

    from tests.conftest import JST

    a, b = pair
    _capacity(pair, 1)
    assert "参加確定です" in a.say(REGISTER, user=U1)[0]
    assert "キャンセル待ち" in a.say(REGISTER, user=U2)[0]
    for bot in pair:
        bot.clock.now = dt.datetime(2026, 12, 29, 13, 35, tzinfo=JST)
    def told() -> str | None:  # once b has seen both registrations
        said = b.say("出席", user=U2)[0]
        return said if "出席を受け付けているイベントはありません" not in said else None

    assert "キャンセル待ち(1番目)のため、出席は記録できません" in eventually(told, timeout=5)
    assert "記録しました" in b.say("出席", user=U1)[0]
