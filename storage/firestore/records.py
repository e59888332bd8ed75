"""What a FirestoreOutbox process knows of the entries and the ledger documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENTRIES, LEDGER = "entries", "ledger"
LEASE_SECONDS = 15.0  # no pid to look at across machines: a dead holder frees it after this
LEDGER_DAYS = 60  # the ledger compared with the sheet holds the rows written in this time
LEDGER_OVERLAP = 60.0  # a ledger read again asks for documents written since its last read,
# less this margin for clocks that differ between instances and for commits still under way
FORGET_SECONDS = 600.0  # written entries kept in memory this long (copies are read each minute)


@dataclass
class Known:
    """One entry as this process knows it."""

    seq: int
    id: str
    sheet: str
    op: str
    row_id: str
    payload: dict[str, Any]
    created: float
    attempts: int
    done_at: float | None = None  # when it was written (None: it waits)
    commit: Any = None  # when its batch was committed (a datetime), when known
    ledger: bool = False  # it wrote the ledger too
    repair: bool = False  # a repair wrote it
    written_at: Any = None  # when this process's flush marked it written (a commit time)

    @property
    def pending(self) -> bool:
        return self.done_at is None


@dataclass
class LedgerKnown:
    """One ledger document as the lease holder knows it."""

    fields: dict[str, Any]
    entry: str  # the entry of the bot's last write to the row
    whole: bool
    rewrites: int
    updated: Any  # the document's update time: a precondition for repairs
    written: float = 0.0  # when the bot last wrote the row (the writer's clock)
