"""The bot state's contract, run against both implementations: SQLite in DATA_DIR and Firestore
(Google's emulator). Two objects on the same storage play two instances."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage.firestore.client import Firestore
from storage.firestore.state import FirestoreState
from storage.local.state import SqliteState
from storage.state import CLAIM_SECONDS, DEDUP_KEEP_SECONDS, BotState, EventBusy, JobRecord, Plan
from tests.conftest import make_settings

U1, U2 = "U" + "1" * 32, "U" + "2" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "firestore"])
def states(request, tmp_path: Path) -> Iterator[tuple[Callable[[], BotState], Clock]]:
    """A maker of state objects sharing one storage (each one an instance), and their clock."""
    clock = Clock()
    if request.param == "sqlite":
        yield (lambda: SqliteState(tmp_path / "bot.sqlite3", clock=clock)), clock
        return
    config = make_settings(tmp_path, **request.getfixturevalue("firestore_env")).firestore
    yield (lambda: FirestoreState(Firestore(config), clock=clock)), clock


def _plan(key: str, users: list[str], job: str = "") -> Callable[[set[str]], Plan]:
    def build(fresh: set[str]) -> Plan:
        if key not in fresh:
            return Plan()
        chunk = {"key": key, "n": 0, "retry_key": f"rk-{key}", "event_id": "E1", "kind": "k",
                 "summary": "s", "users": json.dumps(users), "messages": "[]"}
        record = JobRecord(job, U1, "リマインド", len(users), [key]) if job else None
        return Plan([chunk], record, len(users))
    return build


def test_a_webhook_id_is_handled_once_across_instances(states) -> None:
    make, _ = states
    a, b = make(), make()
    assert a.claim_event("ev1") is True
    a.unclaim_event("ev1")  # its handling failed: the redelivery is handled, wherever it goes
    assert b.claim_event("ev1") is True
    b.finish_event("ev1")
    assert a.claim_event("ev1") is False  # handled: a redelivery routed anywhere is skipped


def test_a_claim_never_finished_is_taken_once_it_runs_out(states) -> None:
    make, clock = states
    a, b = make(), make()
    assert a.claim_event("ev") is True  # ...and a stops answering before it finishes
    with pytest.raises(EventBusy):  # LINE's redelivery while a might still be at it
        b.claim_event("ev")
    clock.now += CLAIM_SECONDS + 1
    assert b.claim_event("ev") is True  # the next one is handled
    b.finish_event("ev")
    clock.now += CLAIM_SECONDS + 1
    assert a.claim_event("ev") is False  # handled: never again


def test_handled_ids_are_forgotten_after_the_keep_period(states) -> None:
    make, clock = states
    a = make()
    a.claim_event("old")
    a.finish_event("old")
    clock.now += DEDUP_KEEP_SECONDS + 1
    a.claim_event("new")
    a.finish_event("new")
    a.forget_old_events()
    assert a.claim_event("old") is True and a.claim_event("new") is False


def test_a_conversation_is_shared_and_expires(states) -> None:
    make, clock = states
    a, b = make(), make()
    a.save_conversation(U1, {"flow": "survey", "pos": 2}, ttl=60)
    assert b.conversation(U1) == {"flow": "survey", "pos": 2}
    clock.now += 61
    assert b.conversation(U1) is None
    a.save_conversation(U1, {"flow": "consent"})
    b.end_conversation(U1)
    assert a.conversation(U1) is None
    stack = {"version": 1, "stack": [{"flow": "survey", "answers": {"q": "はい"}},
                                     {"flow": "consent", "then": ["E2"]}]}
    a.save_conversation(f"{U1}#survey-paused", stack, ttl=86400)  # the conversations aside
    assert b.conversation(f"{U1}#survey-paused") == stack


def test_consent_given_on_one_instance_holds_on_another(states) -> None:
    make, _ = states
    a, b = make(), make()
    assert b.has_consent(U1) is False
    a.give_consent(U1)
    a.give_consent(U1)
    assert b.has_consent(U1) is True and b.has_consent(U2) is False
    assert U1 in b.known_users()


def test_a_check_in_is_recorded_once(states) -> None:
    make, _ = states
    a, b = make(), make()
    assert a.check_in("E1", U1, "10:00") == (True, "10:00")
    assert b.check_in("E1", U1, "10:05") == (False, "10:00")
    assert b.check_in("E2", U1, "10:05") == (True, "10:05")


def test_a_delivery_key_is_planned_once_with_its_chunks(states) -> None:
    make, _ = states
    a, b = make(), make()
    first = a.plan(["remind:E1"], _plan("remind:E1", [U1, U2], job="J1"))
    again = b.plan(["remind:E1"], _plan("remind:E1", [U1, U2], job="J2"))
    assert (first.total, again.total) == (2, 0)
    chunks = b.pending_chunks()
    assert [(c["key"], json.loads(c["users"])) for c in chunks] == [("remind:E1", [U1, U2])]
    assert b.pending_chunks("other") == []


def test_a_chunk_is_claimed_by_one_sender_until_its_lease_runs_out(states) -> None:
    make, clock = states
    a, b = make(), make()
    a.plan(["k"], _plan("k", [U1]))
    assert a.claim_chunk("k", 0, 60) is True
    assert b.claim_chunk("k", 0, 60) is False
    clock.now += 61  # the sender died: another takes it
    assert b.claim_chunk("k", 0, 60) is True
    b.finish_chunk("k", 0, sent=False, retry_in=30)  # LINE refused: not before 30 s
    assert a.claim_chunk("k", 0, 60) is False
    clock.now += 31
    assert a.claim_chunk("k", 0, 60) is True
    a.finish_chunk("k", 0, sent=True)
    assert a.pending_chunks() == [] and b.claim_chunk("k", 0, 60) is False


def test_a_job_is_reported_once_when_all_its_chunks_are_sent(states) -> None:
    make, _ = states
    a, b = make(), make()
    a.plan(["k"], _plan("k", [U1, U2], job="J1"))
    assert a.finished_jobs() == []
    a.claim_chunk("k", 0, 60)
    a.finish_chunk("k", 0, sent=True)
    assert b.finished_jobs() == [("J1", U1, "リマインド", 2)]
    assert a.claim_job("J1") is True and b.claim_job("J1") is False
    assert a.finished_jobs() == []
    a.reopen_job("J1")  # the requester could not be told
    assert b.finished_jobs() == [("J1", U1, "リマインド", 2)]


def test_survey_progress_is_counted_per_person(states) -> None:
    make, clock = states
    a, b = make(), make()
    a.survey_started("s1", U1)
    b.survey_started("s1", U1)
    b.survey_started("s1", U2)
    assert a.survey_row("s1", U1) is None
    clock.now += 5
    b.survey_completed("s1", U1, "S-row")
    assert a.survey_row("s1", U1) == "S-row"
    assert a.survey_counts("s1") == (2, 1, clock.now)
    assert a.survey_counts("other") == (0, 0, None)


def test_an_older_event_version_never_overwrites_a_newer_one(states) -> None:
    make, _ = states
    a, b = make(), make()
    assert a.event_version("E1") is None and a.event_changes("E1") == []
    a.remember_event("E1", {"venue": "A"}, 0, [])
    b.remember_event("E1", {"venue": "B"}, 1, ["会場"])
    a.remember_event("E1", {"venue": "A"}, 0, [])  # a slow instance, late
    c = make()  # one that has read nothing yet
    assert c.event_version("E1") == ({"venue": "B"}, 1)
    assert c.event_changes("E1") == ["会場"]


def test_instances_planning_one_delivery_at_once_send_it_once(states) -> None:
    import threading

    make, _ = states
    instances = [make() for _ in range(4)]
    barrier, totals = threading.Barrier(4), []

    def plan(state: BotState) -> None:
        barrier.wait(timeout=10)
        totals.append(state.plan(["remind:E1"], _plan("remind:E1", [U1, U2])).total)

    threads = [threading.Thread(target=plan, args=(s,)) for s in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(totals) == [0, 0, 0, 2]
    assert len(instances[0].pending_chunks()) == 1


def _grouped(fresh: set[str]) -> Plan:
    """k1 (for U1) and k2 (for U2) carry one message: the fresh ones go out in one chunk."""
    users = sorted({"k1": U1, "k2": U2}[k] for k in fresh)
    key = "+".join(sorted(fresh))
    chunk = {"key": key, "n": 0, "retry_key": f"rk-{key}", "event_id": "E1", "kind": "k",
             "summary": "s", "users": json.dumps(users), "messages": "[]"}
    return Plan([chunk], None, len(users)) if users else Plan()


def test_a_key_planned_alone_and_in_a_group_at_once_is_sent_once(states) -> None:
    import threading

    make, _ = states
    instances = [make() for _ in range(4)]
    barrier = threading.Barrier(4)

    def plan(n: int) -> None:  # one instance plans k1 and k2, three plan k2 alone
        barrier.wait(timeout=10)
        instances[n].plan(["k1", "k2"] if n == 0 else ["k2"], _grouped)

    threads = [threading.Thread(target=plan, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    sent_to = [u for c in instances[0].pending_chunks() for u in json.loads(c["users"])]
    assert sorted(sent_to) == [U1, U2]  # U2, of k2, once
