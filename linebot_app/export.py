"""Export an event's registrations and feedback as CSV (UTF-8 with BOM) or .xlsx."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import openpyxl

from sheets.store import Store

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
REG_COLUMNS = ("id", "created_at", "user_id", "display_name", "role", "level", "status", "room",
               "checked_in_at", "rating", "impression", "use_cases", "challenges")
FEEDBACK_COLUMNS = ("id", "created_at", "user_id", "rating", "impression", "use_cases",
                    "challenges")
PROGRESS_EVERY = 1000


def neutralize(value: Any) -> Any:
    """OWASP CSV injection: text that a spreadsheet would run as a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(DANGEROUS):
        return "'" + value
    return value


def collect(store: Store, event_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(registrations with attendance and latest feedback, every feedback row) of one event."""
    feedback = [f for f in store.rows("feedback") if f.get("event_id") == event_id]
    attended = {a["user_id"]: a.get("created_at", "") for a in store.rows("attendance")
                if a.get("event_id") == event_id}
    latest = {f["user_id"]: f for f in sorted(feedback, key=lambda f: f.get("created_at", ""))}
    regs = []
    for reg in sorted(store.registrations(), key=lambda r: (r.created_at, r.id)):
        if reg.event_id == event_id:
            row = {**reg.__dict__, "checked_in_at": attended.get(reg.user_id, "")}
            answer = latest.get(reg.user_id, {})
            row.update({k: answer.get(k, "") for k in FEEDBACK_COLUMNS[3:]})
            regs.append(row)
    return regs, feedback


def _progress(total: int, out: Any = sys.stderr) -> Callable[[int], None]:
    def report(done: int) -> None:
        if total > PROGRESS_EVERY and (done % PROGRESS_EVERY == 0 or done == total):
            print(f"書き出し中 / exporting {done}/{total}", file=out, flush=True)
    return report


def _rows(items: list[dict[str, Any]], columns: Iterable[str]) -> Iterable[list[Any]]:
    report = _progress(len(items))
    for n, item in enumerate(items, start=1):
        yield [item.get(c, "") for c in columns]
        report(n)


def write_csv(path: Path, regs: list[dict[str, Any]]) -> None:
    """One row per registration; UTF-8 with BOM so Excel reads Japanese; formulas neutralised."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(REG_COLUMNS)
        for row in _rows(regs, REG_COLUMNS):
            writer.writerow([neutralize(v) for v in row])


def write_xlsx(path: Path, regs: list[dict[str, Any]], feedback: list[dict[str, Any]]) -> None:
    """Two sheets; every text cell is stored as text (never a formula) and neutralised."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, items, columns in (("registrations", regs, REG_COLUMNS),
                                  ("feedback", feedback, FEEDBACK_COLUMNS)):
        ws = wb.create_sheet(title)
        ws.append(list(columns))
        for row in _rows(items, columns):
            ws.append([neutralize(v) for v in row])
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
    wb.save(path)
