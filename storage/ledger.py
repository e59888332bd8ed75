"""Comparing the sheet with the bot's record of the rows it wrote (the outbox ledger).

A row the bot wrote can vanish from the sheet, or come back with old values, when someone saves
an old copy of the workbook (a script, a sync client, an office program that lost its lock file)
or deletes a row by hand. This module finds those rows; the Store writes them again. Organizers
may change only the columns in ORGANIZER_EDITABLE; their edits there are kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.dates import word_key
from domain.rows import cell_text
from domain.schema import ORGANIZER_EDITABLE, Workbook

MAX_REWRITES = 3  # a row still different after this many rewrites is reported, not rewritten


@dataclass(frozen=True)
class LedgerRow:
    """What the bot last wrote to one row: its fields, the outbox seq of that write, whether the
    bot wrote the whole row (an append) and how often the row has been repaired in a row."""

    fields: dict[str, Any]
    seq: int
    whole: bool
    rewrites: int = 0


@dataclass
class Repairs:
    """What one read of one sheet needs: rows to append again, fields to write again, organizer
    edits to record, and rows that stay wrong however often they are rewritten."""

    sheet: str
    restore: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rewrite: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    adopt: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)  # repaired rows now right
    seqs: dict[str, int] = field(default_factory=dict)  # the ledger seq each finding rests on

    @property
    def lost(self) -> int:
        """Rows the sheet lacks or has wrong, which the bot writes again."""
        return len(self.restore) + len(self.rewrite)

    def summary(self) -> str:
        """One line for the log and for check (English; counts only, no personal data)."""
        parts = [f"{len(self.restore)} rows the bot wrote are missing",
                 f"{len(self.rewrite)} have old or changed values"]
        if self.adopt:
            parts.append(f"{len(self.adopt)} organizer edits are kept")
        if self.stuck:
            parts.append(f"{len(self.stuck)} stay different after {MAX_REWRITES} rewrites")
        return f"{self.sheet}: " + ", ".join(parts)


def sheet_ids(raw: dict[str, Sequence[Sequence[Any]]], sheet: str) -> set[str] | None:
    """Every id in a sheet's id column, bad rows included; None when the sheet or the column is
    not there (then nothing is compared: check reports the missing sheet or column)."""
    rows = raw.get(sheet)
    if not rows:
        return None
    header = [word_key(cell_text(h)) for h in rows[0]]
    if "id" not in header:
        return None
    at = header.index("id")
    return {cell_text(r[at]) for r in rows[1:] if at < len(r) and cell_text(r[at])}


def sheet_rows(org: Workbook, sheet: str) -> dict[str, dict[str, str]]:
    """The parsed rows of a bot sheet, by id, as text."""
    if sheet == "registrations":
        return {r.id: dataclasses.asdict(r) for r in org.registrations}
    return {r["id"]: r for r in org.bot_rows.get(sheet, []) if r.get("id")}


def compare(sheet: str, ids: set[str], rows: dict[str, dict[str, str]],
            ledger: dict[str, LedgerRow]) -> Repairs:
    """What the sheet lacks, given every settled ledger row of it (see the module's doc)."""
    repairs = Repairs(sheet)
    editable = ORGANIZER_EDITABLE.get(sheet, ())
    for row_id, mine in ledger.items():
        repairs.seqs[row_id] = mine.seq
        if row_id not in ids:
            if mine.whole:  # a row someone else added is theirs to delete
                _repair(repairs.restore, repairs, row_id, mine, mine.fields)
            continue
        theirs = rows.get(row_id)
        if theirs is None:
            continue  # a row with a bad cell: check reports it, and its id stays in the sheet
        changed = {k: v for k, v in mine.fields.items()
                   if k in theirs and cell_text(v) != cell_text(theirs[k])}
        if not changed:
            if mine.rewrites:
                repairs.matched.append(row_id)
            continue
        stale = cell_text(theirs.get("updated_at")) < cell_text(mine.fields.get("updated_at"))
        kept = {} if stale else {k: theirs[k] for k in changed if k in editable}
        if kept:
            repairs.adopt.append((row_id, kept))
        rest = {k: v for k, v in changed.items() if k not in kept}
        if rest:
            _repair(repairs.rewrite, repairs, row_id, mine, rest)
    return repairs


def _repair(into: list[tuple[str, dict[str, Any]]], repairs: Repairs, row_id: str,
            mine: LedgerRow, fields: dict[str, Any]) -> None:
    if mine.rewrites >= MAX_REWRITES:
        repairs.stuck.append(row_id)
    else:
        into.append((row_id, fields))
