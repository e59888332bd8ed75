"""The ledger of a FirestoreOutbox: the bot's last write of every row it reads back, one
document per row, and the repairs a comparison with the sheet asks for."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from storage.firestore.client import Firestore, conflicts
from storage.firestore.records import FORGET_SECONDS, LEDGER, LEDGER_DAYS, LEDGER_OVERLAP, Known, LedgerKnown
from storage.ledger import LedgerRow, Repairs

log = logging.getLogger(__name__)


class FirestoreLedger:
    """The ledger's reads and repairs; FirestoreOutbox provides the state they share."""

    fs: Firestore
    clock: Callable[[], float]
    _lock: threading.RLock
    _known: dict[str, Known]
    _order: list[Known]
    _ledger: dict[tuple[str, str], LedgerKnown] | None
    _ledger_at: float
    _ledger_fresh: bool
    on_adopt: list[Callable[[str, dict[str, Any]], None]]
    stage: Callable[..., Any]
    commit: Callable[..., Any]

    # ---- the ledger ----------------------------------------------------------------------------------
    def ledger_sheets(self) -> list[str]:
        """The sheets the ledger knows rows of (read in full when this process first needs it)."""
        return sorted({sheet for sheet, _ in self._ledger_rows()})

    def ledger_ids(self, sheet: str) -> set[str]:
        """The ids of the rows of one sheet the ledger holds."""
        return {row_id for name, row_id in self._ledger_rows() if name == sheet}

    def ledger(self, sheet: str, settled_before: int) -> dict[str, LedgerRow]:
        """The ledger rows of one sheet whose last write has a seq below settled_before."""
        rows = self._ledger_rows()
        with self._lock:
            found = {}
            recent = self.clock() - FORGET_SECONDS
            for (name, row_id), mine in rows.items():
                known = self._known.get(mine.entry)
                # an entry this process does not know is long written (forgotten), or so new
                # that the listener has not reported it yet: then it is not compared yet
                seq = known.seq if known else (0 if mine.written < recent else settled_before)
                if name == sheet and seq < settled_before:
                    found[row_id] = LedgerRow(dict(mine.fields), seq, mine.whole, mine.rewrites)
            return found

    def _ledger_rows(self) -> dict[tuple[str, str], LedgerKnown]:
        """The ledger: read whole when first needed, then only the documents written since
        (when this process took the lease over from another)."""
        with self._lock:
            if self._ledger is not None and self._ledger_fresh:
                return self._ledger
        from google.cloud.firestore import FieldFilter

        started = self.clock()
        since = self._ledger_at - LEDGER_OVERLAP if self._ledger is not None \
            else started - LEDGER_DAYS * 86400
        docs = self.fs.col(LEDGER).where(filter=FieldFilter("written", ">=", since)).get(
            **self.fs.call)
        with self._lock:
            rows = self._ledger if self._ledger is not None else {}
            for d in docs:
                rows[(d.get("sheet"), d.get("row_id"))] = LedgerKnown(
                    dict(d.get("fields") or {}), d.get("entry"), bool(d.get("whole")),
                    int(d.get("rewrites") or 0), d.update_time, float(d.get("written") or 0))
            self._ledger, self._ledger_at, self._ledger_fresh = rows, started, True
            for known in self._order:  # entries committed after the documents were read
                self._fold(known)
            return rows

    def _fold(self, known: Known) -> None:
        """Apply an entry to the ledger this process keeps, as the entry's batch did, unless
        the ledger copy is already newer than that batch."""
        key = (known.sheet, known.row_id)
        mine = self._ledger.get(key) if self._ledger is not None else None
        if self._ledger is None or not known.ledger or known.commit is None or (
                mine and mine.updated >= known.commit):
            return
        if mine is None:
            mine = self._ledger[key] = LedgerKnown({}, known.id, False, 0, known.commit,
                                                    known.created)
        mine.fields = {**mine.fields, **known.payload}
        mine.entry, mine.whole = known.id, mine.whole or known.op == "append"
        mine.written = known.created
        mine.rewrites, mine.updated = (mine.rewrites + 1 if known.repair else 0), known.commit

    def repair(self, repairs: Repairs) -> None:
        """Queue the writes a comparison asked for and keep organizer edits, in one batch that
        fails when another instance wrote one of these rows since; a row this process knows
        was written again since the comparison is left alone."""
        rows = self._ledger_rows()
        sheet = repairs.sheet

        def unchanged(item: tuple[str, Any] | str) -> bool:
            row_id = item if isinstance(item, str) else item[0]
            mine = rows.get((sheet, row_id))
            known = self._known.get(mine.entry) if mine else None
            return mine is not None and (known.seq if known else 0) == repairs.seqs.get(row_id)

        adopt = list(filter(unchanged, repairs.adopt))
        for row_id, fields in adopt:  # seats follow an organizer's status edit first
            for listener in self.on_adopt:
                listener(sheet, {**rows[(sheet, row_id)].fields, **fields})
        staged = [self.stage(sheet, op, row_id, fields, ledger=True, repair=True)
                  for op, found in (("append", repairs.restore), ("update", repairs.rewrite))
                  for row_id, fields in filter(unchanged, found)]
        for item in staged:
            item.precondition = rows[(sheet, item.row_id)]
        batch = self.fs.batch()
        kept = {row_id: {**rows[(sheet, row_id)].fields, **fields} for row_id, fields in adopt}
        for row_id, fields in kept.items():
            self._ledger_update(batch, sheet, row_id, {"fields": fields})
        matched = list(filter(unchanged, repairs.matched))
        for row_id in matched:
            self._ledger_update(batch, sheet, row_id, {"rewrites": 0})
        try:
            commit = self.commit(staged, batch)
        except conflicts() as err:  # compared again at the next read
            log.info("ledger repair deferred: another instance wrote a row (%s)",
                     type(err).__name__)
            with self._lock:
                self._ledger_fresh = False
            return
        self._repaired(rows, sheet, kept, matched, commit)

    def _repaired(self, rows: dict[tuple[str, str], LedgerKnown], sheet: str,
                  kept: dict[str, dict[str, Any]], matched: list[str], commit: Any) -> None:
        """What this process knows of the ledger follows a committed repair."""
        with self._lock:
            for row_id in [*kept, *matched]:
                mine = rows[(sheet, row_id)]
                mine.fields = kept.get(row_id, mine.fields)
                mine.rewrites = 0 if row_id in matched else mine.rewrites
                mine.updated = commit

    def _ledger_update(self, batch: Any, sheet: str, row_id: str, fields: dict[str, Any]) -> None:
        mine = self._ledger_rows()[(sheet, row_id)]
        batch.update(self.fs.doc(LEDGER, sheet, row_id), {**fields, "written": self.clock()},
                     option=self.fs.option(last_update_time=mine.updated))
