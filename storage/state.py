"""The bot's own state, by concern: handled webhook ids, conversations, consents, deliveries,
check-ins, survey progress and the last seen version of each event. BotState is all of them;
features are typed by the part they use. Two implementations: SqliteState in DATA_DIR
(storage.local.state, one machine) and FirestoreState (storage.firestore.state, several
instances).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

DEDUP_KEEP_SECONDS = 8 * 86400  # LINE redelivers for a while; we keep ids for more than 7 days
CONVERSATION_SECONDS = 30 * 60
CLAIM_SECONDS = 60.0  # a claim not finished by then (gunicorn stops a request at 30 s) is free
PURGE_CHANCE = 0.001  # about one webhook in a thousand also clears out old rows


class EventBusy(Exception):
    """Another instance is handling this webhook event now: LINE should deliver it again later
    (skipped then if it was handled, handled if that instance failed)."""


@dataclass(frozen=True)
class JobRecord:
    """A delivery someone asked for: they are told when all its chunks are sent."""

    id: str
    notify: str
    label: str
    total: int
    keys: list[str]


@dataclass(frozen=True)
class Plan:
    """What a delivery plan adds: chunks to send and, maybe, the job they belong to."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    job: JobRecord | None = None
    total: int = 0  # people the chunks reach


class Dedup(Protocol):
    """Webhook events handled, so that a redelivery is answered once."""

    def claim_event(self, event_id: str) -> bool: ...
    def finish_event(self, event_id: str) -> None: ...
    def unclaim_event(self, event_id: str) -> None: ...
    def forget_old_events(self) -> None: ...


class Conversations(Protocol):
    """Each user's open conversation (a flows.Conversation as a dict), expiring after ttl."""

    def conversation(self, user_id: str) -> dict[str, Any] | None: ...
    def save_conversation(self, user_id: str, data: dict[str, Any],
                          ttl: float = ...) -> None: ...
    def end_conversation(self, user_id: str) -> None: ...


class Consents(Protocol):
    """Who agreed to the privacy notice, and everyone the bot has seen."""

    def has_consent(self, user_id: str) -> bool: ...
    def give_consent(self, user_id: str) -> None: ...
    def known_users(self) -> list[str]: ...


class DeliveryLog(Protocol):
    """Pushes planned once, sent in chunks by whichever worker claims them, and the jobs whose
    requester is told when they are done."""

    poll_seconds: float  # how often the delivery worker looks for other processes' plans

    def plan(self, keys: list[str], build: Callable[[set[str]], Plan]) -> Plan: ...
    def pending_chunks(self, key: str | None = None) -> list[dict[str, Any]]: ...
    def claim_chunk(self, key: str, n: int, seconds: float) -> bool: ...
    def finish_chunk(self, key: str, n: int, sent: bool, retry_in: float = 0.0) -> None: ...
    def finished_jobs(self) -> list[tuple[str, str, str, int]]: ...
    def claim_job(self, job: str) -> bool: ...
    def reopen_job(self, job: str) -> None: ...


class Checkins(Protocol):
    """Who checked in to which event, once."""

    def check_in(self, event_id: str, user_id: str, at: str) -> tuple[bool, str]: ...


class SurveyProgress(Protocol):
    """Who started and finished each survey, and the row their answer went to."""

    def survey_started(self, survey_id: str, user_id: str) -> None: ...
    def survey_row(self, survey_id: str, user_id: str) -> str | None: ...
    def survey_completed(self, survey_id: str, user_id: str, row_id: str) -> None: ...
    def survey_counts(self, survey_id: str) -> tuple[int, int, float | None]: ...


class EventVersions(Protocol):
    """The last seen version of each event, for change notices."""

    def event_version(self, event_id: str) -> tuple[dict[str, Any], int] | None: ...
    def remember_event(self, event_id: str, fields: dict[str, Any], version: int,
                       changed: list[str]) -> None: ...
    def event_changes(self, event_id: str) -> list[str]: ...


class BotState(Dedup, Conversations, Consents, DeliveryLog, Checkins, SurveyProgress,
               EventVersions, Protocol):
    """The bot's own state, whichever implementation keeps it: every part above, plus the
    storage's health."""

    errors: tuple[type[BaseException], ...]  # what its calls raise when storage fails

    def probe(self) -> None: ...
    def close(self) -> None: ...
