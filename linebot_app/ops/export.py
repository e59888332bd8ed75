"""Export an event's registrations and feedback as CSV (UTF-8 with BOM) or .xlsx."""

from __future__ import annotations

import csv
import dataclasses
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import openpyxl

from storage.store import Store

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
REG_COLUMNS = ("id", "created_at", "user_id", "display_name", "role", "level", "status", "room",
               "checked_in_at", "rating", "impression", "use_cases", "challenges")
FEEDBACK_COLUMNS = ("id", "created_at", "user_id", "rating", "impression", "use_cases",
                    "challenges")
NUMERIC_COLUMNS = frozenset({"rating"})
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
    for reg in sorted(store.registrations(event=event_id), key=lambda r: (r.created_at, r.id)):
        if reg.event_id == event_id:
            row = {**dataclasses.asdict(reg), "checked_in_at": attended.get(reg.user_id, "")}
            answer = latest.get(reg.user_id, {})
            row.update({k: answer.get(k, "") for k in FEEDBACK_COLUMNS[3:]})
            row["feedback_id"] = answer.get("id", "")  # not a column: which answer is shown
            regs.append(row)
    return regs, feedback


def unshown_feedback(regs: list[dict[str, Any]],
                     feedback: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feedback rows no registration row shows (no registration, or an older answer), as rows."""
    shown = {r.get("feedback_id") for r in regs if r.get("feedback_id")}
    names = {r["user_id"]: r.get("display_name", "") for r in regs}
    return [{"created_at": f.get("created_at", ""), "user_id": f.get("user_id", ""),
             "display_name": names.get(f.get("user_id", ""), ""),
             **{k: f.get(k, "") for k in FEEDBACK_COLUMNS[3:]}}
            for f in feedback if f.get("id") not in shown]


def as_number(column: str, value: Any) -> Any:
    """A numeric column's text ("4", "4.5") as a number; anything else unchanged."""
    if column not in NUMERIC_COLUMNS or not isinstance(value, str):
        return value
    text = value.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return value


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


def write_csv(path: Path, regs: list[dict[str, Any]],
              feedback: list[dict[str, Any]] | None = None) -> None:
    """One row per registration, then one per feedback no registration row shows.

    UTF-8 with BOM so Excel reads Japanese; formulas neutralised.
    """
    items = regs + unshown_feedback(regs, feedback or [])
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(REG_COLUMNS)
        for row in _rows(items, REG_COLUMNS):
            writer.writerow([neutralize(v) for v in row])


def write_xlsx(path: Path, regs: list[dict[str, Any]], feedback: list[dict[str, Any]]) -> None:
    """Two sheets; numbers stay numbers, text is stored as text (never a formula), neutralised."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, items, columns in (("registrations", regs, REG_COLUMNS),
                                  ("feedback", feedback, FEEDBACK_COLUMNS)):
        ws = wb.create_sheet(title)
        ws.append(list(columns))
        for row in _rows(items, columns):
            ws.append([neutralize(as_number(c, v)) for c, v in zip(columns, row, strict=True)])
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
    wb.save(path)
