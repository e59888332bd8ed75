"""The bot's own state in Firestore, shared by every instance (STATE_BACKEND=firestore).

storage.state.BotState, as storage.local.state.SqliteState keeps it on one machine. Each
decision that must hold across instances is a write with a precondition: a webhook id, a
delivery key, a check-in and a survey start are documents created only if absent; a chunk, a
job and the event versions change only if nobody changed them since they were read. What
cannot change back (a consent, a planned key) is remembered in the process, so that the minute
round and repeated questions read nothing.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from storage.firestore.client import Firestore, conflicts, errors
from storage.state import (
    CLAIM_SECONDS,
    CONVERSATION_SECONDS,
    DEDUP_KEEP_SECONDS,
    PURGE_CHANCE,
    EventBusy,
    Plan,
)

VERSIONS_FRESH_SECONDS = 5.0  # the minute round reads the event versions afresh
MARKS_FRESH_SECONDS = 60.0  # 【変更あり】 marks may lag this much behind another instance
PURGE_BATCH = 400
PLAN_TRIES = 5


class FirestoreState:
    """BotState in Firestore."""

    poll_seconds = 60.0  # each look is a read: the round and a wake-up cover the rest

    def __init__(self, fs: Firestore, clock: Callable[[], float] = time.time) -> None:
        self.fs = fs
        self.clock = clock
        self.errors = errors()
        self._consented: set[str] = set()
        self._planned: set[str] = set()
        self._versions: tuple[float, dict[str, Any], Any] | None = None
        self._lock = threading.Lock()

    def _create(self, ref: Any, data: dict[str, Any]) -> bool:
        """Create a document; False when it exists already."""
        from google.api_core.exceptions import AlreadyExists

        try:
            ref.create(data, **self.fs.call)
        except AlreadyExists:
            return False
        return True

    def probe(self) -> None:
        """Nothing local to look at: a Firestore failure shows on the next event."""

    def close(self) -> None:
        """Nothing to stop."""

    # ---- webhook ids ---------------------------------------------------------------------------
    def claim_event(self, event_id: str) -> bool:
        """True when this instance should handle the event: the first time any instance sees
        its id, or when an instance claimed it CLAIM_SECONDS ago and never finished (it failed
        and could not say so, or died). False for a redelivery of a handled event; EventBusy for
        one being handled now (or by an instance that failed less than CLAIM_SECONDS ago)."""
        ref, now = self.fs.doc("handled", event_id), self.clock()
        if random.random() < PURGE_CHANCE:
            self.forget_old_events()
        if self._create(ref, {"at": now, "until": now + CLAIM_SECONDS}):
            return True
        snap = ref.get(**self.fs.call)
        if not snap.exists:  # released meanwhile
            return self._create(ref, {"at": now, "until": now + CLAIM_SECONDS})
        until = (snap.to_dict() or {}).get("until")
        if until is None:
            return False
        if until > now:
            raise EventBusy(f"event {event_id} is being handled by another instance")
        return self._update_if_same(ref, snap, {"at": now, "until": now + CLAIM_SECONDS})

    def finish_event(self, event_id: str) -> None:
        """The event was handled: redeliveries of it are skipped from now on."""
        self.fs.doc("handled", event_id).update({"until": None}, **self.fs.call)

    def unclaim_event(self, event_id: str) -> None:
        """Forget an id whose handling failed, so that LINE's redelivery is handled."""
        self.fs.doc("handled", event_id).delete(**self.fs.call)

    def forget_old_events(self) -> None:
        """Drop handled ids older than the keep period, and expired conversations."""
        now = self.clock()
        self._delete_where("handled", "at", now - DEDUP_KEEP_SECONDS)
        self._delete_where("conversations", "expires", now)

    def _delete_where(self, collection: str, field: str, before: float) -> None:
        from google.cloud.firestore import FieldFilter

        old = self.fs.col(collection).where(filter=FieldFilter(field, "<", before)).limit(
            PURGE_BATCH).get(**self.fs.call)
        if old:
            batch = self.fs.batch()
            for snap in old:
                batch.delete(snap.reference)
            batch.commit(**self.fs.call)

    # ---- conversations and consent -------------------------------------------------------------
    def conversation(self, user_id: str) -> dict[str, Any] | None:
        """The user's open conversation, unless it has expired."""
        snap = self.fs.doc("conversations", user_id).get(**self.fs.call)
        if not snap.exists or snap.get("expires") < self.clock():
            return None
        return json.loads(snap.get("data"))

    def save_conversation(self, user_id: str, data: dict[str, Any],
                          ttl: float = CONVERSATION_SECONDS) -> None:
        """Store the conversation; it expires ttl seconds after its last answer."""
        self.fs.doc("conversations", user_id).set(
            {"data": json.dumps(data, ensure_ascii=False), "expires": self.clock() + ttl},
            **self.fs.call)

    def end_conversation(self, user_id: str) -> None:
        """Forget the user's conversation."""
        self.fs.doc("conversations", user_id).delete(**self.fs.call)

    def has_consent(self, user_id: str) -> bool:
        """Whether the user has agreed to the privacy notice (a yes is remembered here)."""
        if user_id in self._consented:
            return True
        if self.fs.doc("consents", user_id).get(**self.fs.call).exists:
            self._consented.add(user_id)
            return True
        return False

    def give_consent(self, user_id: str) -> None:
        """Record the user's agreement to the privacy notice."""
        self._create(self.fs.doc("consents", user_id), {"user_id": user_id, "at": self.clock()})
        self._consented.add(user_id)

    def known_users(self) -> list[str]:
        """Everyone who has consented or started a survey."""
        return sorted({snap.get("user_id") for name in ("consents", "survey_progress")
                       for snap in self.fs.col(name).select(["user_id"]).get(**self.fs.call)})

    def check_in(self, event_id: str, user_id: str, at: str) -> tuple[bool, str]:
        """Record attendance once: (True, at) the first time, (False, first time) after."""
        ref = self.fs.doc("checkins", event_id, user_id)
        if self._create(ref, {"event_id": event_id, "user_id": user_id, "at": at}):
            return True, at
        return False, ref.get(**self.fs.call).get("at")

    # ---- deliveries ---------------------------------------------------------------------------
    def plan(self, keys: list[str], build: Callable[[set[str]], Plan]) -> Plan:
        """In one batch: the keys no instance planned before (each created only if absent),
        the plan built from them, and its chunks and job. A key another instance planned
        meanwhile makes the batch fail; it is then read again and left out."""
        from google.api_core.exceptions import AlreadyExists

        for _ in range(PLAN_TRIES):
            unknown = [k for k in dict.fromkeys(keys) if k not in self._planned]
            refs = {k: self.fs.doc("planned", k) for k in unknown}
            have = {s.reference.id for s in self.fs.client().get_all(
                list(refs.values()), **self.fs.call) if s.exists} if refs else set()
            fresh = {k for k, ref in refs.items() if ref.id not in have}
            self._planned |= set(unknown) - fresh
            plan = build(fresh)
            try:
                self._record(plan, [refs[k] for k in fresh])
            except AlreadyExists:
                continue
            self._planned |= fresh
            return plan
        raise RuntimeError("could not plan the deliveries: their keys keep being planned")

    def _record(self, plan: Plan, planned: list[Any]) -> None:
        if not planned:
            return
        batch, now = self.fs.batch(), self.clock()
        for ref in planned:
            batch.create(ref, {"at": now})
        for chunk in plan.chunks:
            batch.create(self.fs.doc("chunks", chunk["key"], str(chunk["n"])),
                         {**chunk, "status": "pending", "lease": 0.0, "sent_at": None})
        if plan.job:
            job = plan.job
            batch.create(self.fs.doc("jobs", job.id), {
                "id": job.id, "notify": job.notify, "label": job.label, "total": job.total,
                "keys": job.keys, "created": now, "done_at": None})
        batch.commit(**self.fs.call)

    def pending_chunks(self, key: str | None = None) -> list[dict[str, Any]]:
        """Chunks not yet sent (of one delivery, or of all), in order."""
        from google.cloud.firestore import FieldFilter

        query = self.fs.col("chunks").where(filter=FieldFilter("status", "==", "pending"))
        if key:
            query = query.where(filter=FieldFilter("key", "==", key))
        names = ("key", "n", "retry_key", "event_id", "kind", "summary", "users", "messages")
        found = [{k: snap.get(k) for k in names} for snap in query.get(**self.fs.call)]
        return sorted(found, key=lambda c: (c["key"], c["n"]))

    def claim_chunk(self, key: str, n: int, seconds: float) -> bool:
        """Take a chunk for sending; another sender cannot take it until the lease runs out."""
        ref = self.fs.doc("chunks", key, str(n))
        snap = ref.get(**self.fs.call)
        now = self.clock()
        if not snap.exists or snap.get("status") != "pending" or snap.get("lease") >= now:
            return False
        return self._update_if_same(ref, snap, {"lease": now + seconds})

    def _update_if_same(self, ref: Any, snap: Any, fields: dict[str, Any]) -> bool:
        """Update a document unless it changed since snap was read."""
        batch = self.fs.batch()
        batch.update(ref, fields, option=self.fs.option(last_update_time=snap.update_time))
        try:
            batch.commit(**self.fs.call)
        except conflicts():
            return False
        return True

    def finish_chunk(self, key: str, n: int, sent: bool, retry_in: float = 0.0) -> None:
        """Mark a chunk sent, or give it back for a try retry_in seconds from now."""
        now = self.clock()
        fields = {"status": "sent", "sent_at": now} if sent else {
            "lease": now + retry_in if retry_in else 0.0}
        self.fs.doc("chunks", key, str(n)).update(fields, **self.fs.call)

    def finished_jobs(self) -> list[tuple[str, str, str, int]]:
        """(id, notify, label, total) of jobs not yet reported whose chunks are all sent."""
        from google.cloud.firestore import FieldFilter

        open_jobs = self.fs.col("jobs").where(filter=FieldFilter("done_at", "==", None)).get(
            **self.fs.call)
        if not open_jobs:
            return []
        waiting = {c["key"] for c in self.pending_chunks()}
        done = [j for j in open_jobs if not waiting & set(j.get("keys"))]
        return [(j.get("id"), j.get("notify"), j.get("label"), j.get("total"))
                for j in sorted(done, key=lambda j: j.get("created"))]

    def claim_job(self, job: str) -> bool:
        """Take the telling of a finished job: one instance, once (reopen_job if it fails)."""
        ref = self.fs.doc("jobs", job)
        snap = ref.get(**self.fs.call)
        if not snap.exists or snap.get("done_at") is not None:
            return False
        return self._update_if_same(ref, snap, {"done_at": self.clock()})

    def reopen_job(self, job: str) -> None:
        """The requester could not be told; the next pass tries again."""
        self.fs.doc("jobs", job).update({"done_at": None}, **self.fs.call)

    # ---- surveys --------------------------------------------------------------------------------
    def survey_started(self, survey_id: str, user_id: str) -> None:
        """Count a respondent as started (once)."""
        self._create(self.fs.doc("survey_progress", survey_id, user_id), {
            "survey_id": survey_id, "user_id": user_id, "started": self.clock(),
            "completed": None, "row_id": None})

    def survey_row(self, survey_id: str, user_id: str) -> str | None:
        """The answers row a user already sent for a survey, if any."""
        snap = self.fs.doc("survey_progress", survey_id, user_id).get(**self.fs.call)
        return snap.get("row_id") if snap.exists and snap.get("completed") is not None else None

    def survey_completed(self, survey_id: str, user_id: str, row_id: str) -> None:
        """Record a confirmed response."""
        self.survey_started(survey_id, user_id)
        self.fs.doc("survey_progress", survey_id, user_id).update(
            {"completed": self.clock(), "row_id": row_id}, **self.fs.call)

    def survey_counts(self, survey_id: str) -> tuple[int, int, float | None]:
        """(started, completed, time of the last completion) for a survey."""
        from google.cloud.firestore import FieldFilter

        docs = self.fs.col("survey_progress").where(
            filter=FieldFilter("survey_id", "==", survey_id)).get(**self.fs.call)
        done = [d.get("completed") for d in docs if d.get("completed") is not None]
        return len(docs), len(done), max(done) if done else None

    # ---- event versions (one document: the minute round reads it once) ----------------------------
    def _all_versions(self, fresh_seconds: float) -> dict[str, Any]:
        with self._lock:
            cached = self._versions
        if cached and self.clock() - cached[0] < fresh_seconds:
            return cached[1]
        snap = self.fs.doc("meta", "event-versions").get(**self.fs.call)
        versions = dict(snap.get("events") or {}) if snap.exists else {}
        with self._lock:
            self._versions = (self.clock(), versions, snap.update_time if snap.exists else None)
        return versions

    def event_version(self, event_id: str) -> tuple[dict[str, Any], int] | None:
        """The event's fields as last seen and how many changes were noticed, or None."""
        found = self._all_versions(VERSIONS_FRESH_SECONDS).get(event_id)
        return (json.loads(found["fields"]), found["version"]) if found else None

    def event_changes(self, event_id: str) -> list[str]:
        """What the last noticed change of the event touched (日時, 会場, 開催), or []."""
        found = self._all_versions(MARKS_FRESH_SECONDS).get(event_id)
        return json.loads(found["changed"]) if found else []

    def remember_event(self, event_id: str, fields: dict[str, Any], version: int,
                       changed: list[str]) -> None:
        """Record the event's fields at this version; an older version never overwrites."""
        ref = self.fs.doc("meta", "event-versions")
        for _ in range(PLAN_TRIES):
            versions = self._all_versions(0)
            known = versions.get(event_id)
            if known and known["version"] > version:
                return
            versions = {**versions, event_id: {
                "fields": json.dumps(fields, ensure_ascii=False), "version": version,
                "changed": json.dumps(changed, ensure_ascii=False), "at": self.clock()}}
            batch = self.fs.batch()
            updated = self._versions[2] if self._versions else None
            if updated is None:
                batch.create(ref, {"events": versions})
            else:
                batch.update(ref, {"events": versions},
                             option=self.fs.option(last_update_time=updated))
            try:
                results = batch.commit(**self.fs.call)
            except conflicts():
                continue
            with self._lock:
                self._versions = (self.clock(), versions, results[0].update_time)
            return
