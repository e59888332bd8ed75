"""The outbox's one interface: every accepted row is committed to an outbox before the person
is answered, and leaves it only once the sheet has it. Two implementations: SqliteOutbox in
DATA_DIR (storage.local.outbox) and FirestoreOutbox (storage.firestore.outbox). The outbox is
also the ledger of every row the bot wrote, and holds the flusher's lease and quota."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from storage.ledger import LedgerRow, Repairs


@dataclass(frozen=True)
class Entry:
    """One queued change: an appended row, or new values for a row found by id."""

    seq: int
    sheet: str
    op: str
    row_id: str
    payload: dict[str, Any]
    created: float
    done_at: float | None
    attempts: int = 0


class Outbox(Protocol):
    """What the Store asks of an outbox."""

    errors: tuple[type[BaseException], ...]  # what the outbox raises when its storage fails

    def add(self, sheet: str, row: dict[str, Any], *, ledger: bool = False) -> None:
        """Queue a new row (ledger: remember it as the bot's own)."""

    def update(self, sheet: str, row_id: str, fields: dict[str, Any], *,
               ledger: bool = False) -> None:
        """Queue new values for the row with this id."""

    def pending(self, limit: int = 5000) -> list[Entry]:
        """Entries the sheet has not confirmed yet, oldest first."""

    def has_pending(self) -> bool:
        """Whether anything waits to be written."""

    def after(self, seq: int, sheet: str) -> list[Entry]:
        """A sheet's entries queued after seq, done or not (for merging with a copy)."""

    def mark_done(self, seqs: list[int]) -> None:
        """The sheet confirmed these entries."""

    def mark_attempt(self, seqs: list[int]) -> None:
        """A write of these entries was tried and its outcome is unknown."""

    def first_unseen(self, when: float) -> int:
        """The first seq a copy of the sheet read at `when` may not hold."""

    def written_since(self, when: float) -> bool:
        """Whether the bot wrote to the sheet after `when`."""

    def note_written(self, version: float) -> None:
        """The version (modification time) of the sheet after the bot's own write."""

    def written_version(self) -> float:
        """The version noted by the last write of the bot (any process)."""

    def ledger(self, sheet: str, settled_before: int) -> dict[str, LedgerRow]:
        """The bot's last write of each row of a sheet, for entries before settled_before."""

    def ledger_sheets(self) -> list[str]:
        """The sheets the ledger knows rows of."""

    def repair(self, repairs: Repairs) -> None:
        """Queue what a comparison with the sheet asked for, leaving alone any row the bot
        wrote again since the comparison."""

    def repairs_here(self) -> bool:
        """Whether this instance compares the sheet with the ledger."""

    def take_quota(self, kind: str, limit: int, window: float) -> bool:
        """One call of a kind, if fewer than limit were made in the last window seconds."""

    def take_lease(self, seconds: float, *, ignore_schedule: bool = False) -> bool:
        """Become the one flusher for a while (False: another holds it, or it is too soon)."""

    def release_lease(self, next_flush_in: float) -> None:
        """Stop flushing; the next flush is due in next_flush_in seconds."""

    def give_up_lease(self) -> None:
        """Stop flushing now, with nothing scheduled."""

    def held_elsewhere(self) -> bool:
        """Whether another process holds the flusher's lease."""

    def purge(self, keep_seconds: float = 86400) -> None:
        """Forget entries the sheet confirmed more than keep_seconds ago."""

    def describe(self) -> str:
        """Where the outbox is, for logs (a file, or a Firestore database)."""

    def health(self) -> tuple[int, float]:
        """(entries waiting, age in seconds of the oldest)."""

    def close(self) -> None:
        """Release connections and listeners."""
