"""init-sheet: prepare a Google spreadsheet (worksheets, header rows, frozen headers), optionally
copying the organizer sheets from a workbook. Never changes rows that are already there."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from domain.schema import ALL_SHEETS, COLUMNS, ORGANIZER_SHEETS, cell_text
from storage.sheets.google import GoogleBackend
from storage.sheets.workbook import WorkbookBackend


def sheet_value(value: Any) -> Any:
    """A workbook cell as a Sheets value: dates and times as the text organizers would type."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M") if value.time() != dt.time(0) else f"{value:%Y-%m-%d}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return "" if value is None else value


ADMINS = "admin_user_ids"


def initialize(backend: GoogleBackend, source: Path | None = None, admins: str = "") -> list[str]:
    """Do what is missing and say what was done, one line each ("! " lines need the organizer).

    admin_user_ids is never copied from the workbook (the sample's is the simulator's organizer):
    it holds `admins` when given, and is left for the organizer to fill otherwise."""
    done: list[str] = []
    missing = [n for n in ALL_SHEETS if n not in backend.sheet_titles()]
    if missing:
        backend.add_sheets(missing)
        done += [f"シートを作成しました / created worksheet: {n}" for n in missing]
    current = backend.read()
    copied = WorkbookBackend(source).read() if source else {}
    copied["settings"] = _with_admins(copied.get("settings") or [], admins)
    for name in ALL_SHEETS:  # the sheets read() leaves out (deliveries): their header only
        rows = current.get(name) if name in current else backend.header_row(name)
        done += _fill(backend, name, rows or [], copied.get(name) or [])
    backend.freeze_header_rows(ALL_SHEETS)
    done.append("見出し行を固定しました / froze the header rows")
    if not admins:
        done.append(f"! settings シートの {ADMINS} が空です。管理者の LINE ユーザーID を入力するか、"
                    f"--admin U… を付けて実行してください / {ADMINS} is empty: fill it in, or "
                    "run again with --admin U…")
    elif any("not copied" in line and line.startswith("settings") for line in done):
        done.append(f"! settings シートに既にデータがあるため、{ADMINS} は変えていません / "
                    f"the settings sheet has data already: {ADMINS} was not changed")
    return done


def _with_admins(rows: list[list[Any]], admins: str) -> list[list[Any]]:
    """The settings rows to copy: the workbook's, except admin_user_ids, which is `admins`."""
    header = rows[0] if rows else list(COLUMNS["settings"])
    keys = [cell_text(h).lower() for h in header]
    key_at = keys.index("key") if "key" in keys else 0
    value_at = keys.index("value") if "value" in keys else 1
    kept = [r for r in rows[1:]
            if cell_text(r[key_at] if len(r) > key_at else "").strip().lower() != ADMINS]
    if not admins:
        return [header, *kept] if kept else []
    mine: list[Any] = [""] * max(len(header), key_at + 1, value_at + 1)
    mine[key_at], mine[value_at] = ADMINS, admins
    return [header, mine, *kept]


def _aligned(source: list[list[Any]], header: list[str]) -> list[list[Any]]:
    """Source data rows re-ordered to the target header's columns."""
    if not source:
        return []
    keys = [cell_text(h).lower() for h in source[0]]
    rows = [dict(zip(keys, row, strict=False)) for row in source[1:]
            if any(v not in (None, "") for v in row)]
    return [[sheet_value(row.get(key)) for key in header] for row in rows]


def _fill(backend: GoogleBackend, name: str, rows: list[list[Any]], source: list[list[Any]]
          ) -> list[str]:
    has_header = bool(rows) and any(cell_text(v) for v in rows[0])
    header = [cell_text(h).lower() for h in rows[0]] if has_header else list(COLUMNS[name])
    data = _aligned(source, header) if name in ORGANIZER_SHEETS else []
    if not has_header:
        backend.put_rows(name, 1, [header] + data)
        note = f", {len(data)} 行をコピー / copied {len(data)} rows" if data else ""
        return [f"{name}: 見出し行を書きました / wrote the header row{note}"]
    if not data:
        return []
    if any(any(cell_text(v) for v in r) for r in rows[1:]):
        return [f"{name}: 既にデータがあるためコピーしません / has data already, not copied"]
    backend.put_rows(name, 2, data)
    return [f"{name}: {len(data)} 行をコピーしました / copied {len(data)} rows"]
