"""What a spreadsheet backend is (the .xlsx workbook, Google Sheets) and what it raises."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.schema import COLUMNS


class BackendError(Exception):
    """The spreadsheet could not be read or written; rows wait in the outbox."""


class BackendBusy(BackendError):
    """The spreadsheet may not be written just now (for example, open in Excel)."""


@dataclass
class SheetChanges:
    """Everything waiting for one worksheet: rows to add and rows to change by id."""

    sheet: str
    appends: list[dict[str, Any]] = field(default_factory=list)
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    verify: bool = False  # an earlier try may have landed: check ids before appending

    def keys(self) -> list[str]:
        """Every column the change writes, in first-seen order (the sheet's own first)."""
        keys = list(COLUMNS.get(self.sheet, ()))
        for values in [*self.appends, *(fields for _, fields in self.updates)]:
            keys += [k for k in values if k not in keys]
        return keys


class Keeper(Protocol):
    """Where the last good copy of the sheets is kept (storage.sheets.snapshot.FileSnapshot, or
    storage.firestore.client.FirestoreSnapshot)."""

    def describe(self) -> str: ...
    def save(self, sheets_json: str, read_at: float) -> None: ...
    def load(self) -> tuple[dict[str, list[list[Any]]], float] | None: ...


class Backend(Protocol):
    """What a storage backend provides."""

    def describe(self) -> str: ...
    def version(self) -> object | None: ...
    def read(self) -> dict[str, list[list[Any]]]: ...
    def write(self, changes: Sequence[SheetChanges]) -> None: ...
