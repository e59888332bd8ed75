"""The emulator's data: spreadsheets, their sheets and cells, and Google-shaped answers."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from emulator.a1 import A1, parse, render

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_sheet_ids = itertools.count(1_000_001, 7919)


class ApiError(Exception):
    """An error answered in Google's shape: {"error": {"code", "message", "status"}}."""

    def __init__(self, code: int, message: str, status: str) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def bad_range(text: str) -> ApiError:
    return ApiError(400, f"Unable to parse range: {text}", "INVALID_ARGUMENT")


@dataclass(frozen=True)
class Formula:
    """A cell entered as a formula (USER_ENTERED text starting with '=')."""

    text: str


def user_entered(value: Any) -> Any:
    """What Sheets stores for a USER_ENTERED value."""
    if not isinstance(value, str):
        return value
    if value.startswith("="):
        return Formula(value)
    if value.startswith("'"):
        return value[1:]
    if _NUMBER.match(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    if value.upper() in ("TRUE", "FALSE"):
        return value.upper() == "TRUE"
    return value


def rendered(value: Any, option: str) -> Any:
    """A stored value as the valueRenderOption asks."""
    if isinstance(value, Formula):
        return value.text
    if option == "UNFORMATTED_VALUE" or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class Sheet:
    """One worksheet: a grid of rows, 1000 x 26 by default as Google makes them."""

    title: str
    index: int
    sheet_id: int = field(default_factory=lambda: next(_sheet_ids))
    rows: list[list[Any]] = field(default_factory=list)
    row_count: int = 1000
    col_count: int = 26
    frozen_rows: int = 0
    frozen_cols: int = 0
    hidden: bool = False

    def properties(self) -> dict[str, Any]:
        grid: dict[str, Any] = {"rowCount": self.row_count, "columnCount": self.col_count}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        if self.frozen_cols:
            grid["frozenColumnCount"] = self.frozen_cols
        props = {"sheetId": self.sheet_id, "title": self.title, "index": self.index,
                 "sheetType": "GRID", "gridProperties": grid}
        if self.hidden:
            props["hidden"] = True
        return props

    def bounds(self, a1: A1) -> tuple[int, int, int, int]:
        """Concrete (r1, c1, r2, c2), corners put in order and clipped to the grid."""
        rows = sorted(x for x in (a1.r1, a1.r2) if x is not None) or [1]
        cols = sorted(x for x in (a1.c1, a1.c2) if x is not None) or [1]
        r1 = rows[0] if a1.r1 is not None else 1
        c1 = cols[0] if a1.c1 is not None else 1
        r2 = min(rows[-1] if a1.r2 is not None else self.row_count, self.row_count)
        c2 = min(cols[-1] if a1.c2 is not None else self.col_count, self.col_count)
        return r1, c1, max(r2, r1), max(c2, c1)

    def resize(self, rows: int | None, cols: int | None) -> None:
        """Change the grid size, dropping cells that fall outside it."""
        if rows is not None:
            self.row_count = rows
            del self.rows[rows:]
        if cols is not None:
            self.col_count = cols
            for row in self.rows:
                del row[cols:]

    def insert_rows(self, at: int, count: int) -> None:
        """Insert empty rows before row `at` (INSERT_ROWS): what was there moves down."""
        if at - 1 < len(self.rows):
            self.rows[at - 1:at - 1] = [[] for _ in range(count)]
        self.row_count += count

    def table(self, a1: A1) -> tuple[int, int, int, int] | None:
        """The logical table an append looks for: (top, first col, bottom, last col)."""
        r1, c1, r2, c2 = self.bounds(a1)
        top = next((r for r in range(r1, min(r2, len(self.rows)) + 1)
                    if any(self.cell(r, c) not in ("", None) for c in range(c1, c2 + 1))), None)
        if top is None:
            return None
        filled = [c for c in range(c1, c2 + 1) if self.cell(top, c) not in ("", None)]
        first = c1 if a1.c1 is not None else filled[-1]
        if self.cell(top, first) in ("", None):
            return None
        last = first
        while last + 1 <= c2 and self.cell(top, last + 1) not in ("", None):
            last += 1
        if a1.c1 is None:
            while first - 1 >= c1 and self.cell(top, first - 1) not in ("", None):
                first -= 1
        bottom = top
        while any(self.cell(bottom + 1, c) not in ("", None) for c in range(first, last + 1)):
            bottom += 1
        return top, first, bottom, last

    def cell(self, r: int, c: int) -> Any:
        row = self.rows[r - 1] if r - 1 < len(self.rows) else []
        return row[c - 1] if c - 1 < len(row) else ""

    def get(self, box: tuple[int, int, int, int], option: str) -> list[list[Any]]:
        """Values in the box, with trailing empty cells and rows trimmed as Google does."""
        r1, c1, r2, c2 = box
        out = []
        for r in range(r1, min(r2, len(self.rows)) + 1):
            row = [rendered(self.cell(r, c), option) for c in range(c1, c2 + 1)]
            while row and row[-1] in ("", None):
                row.pop()
            out.append(row)
        while out and not out[-1]:
            out.pop()
        return out

    def put(self, r: int, c: int, values: list[list[Any]]) -> tuple[int, int]:
        """Write a block at (r, c); returns (last row, last column) written."""
        last_c = c
        for i, row in enumerate(values):
            self._ensure(r + i, c + len(row) - 1)
            for j, value in enumerate(row):
                if value is not None:
                    self.rows[r + i - 1][c + j - 1] = value
            last_c = max(last_c, c + len(row) - 1)
        return r + len(values) - 1, last_c

    def _ensure(self, r: int, c: int) -> None:
        while len(self.rows) < r:
            self.rows.append([])
        row = self.rows[r - 1]
        row.extend([""] * (c - len(row)))
        self.row_count = max(self.row_count, r)
        self.col_count = max(self.col_count, c)

    def clear(self, box: tuple[int, int, int, int]) -> None:
        r1, c1, r2, c2 = box
        for r in range(r1, min(r2, len(self.rows)) + 1):
            row = self.rows[r - 1]
            for c in range(c1, min(c2, len(row)) + 1):
                row[c - 1] = ""


@dataclass
class Spreadsheet:
    """A spreadsheet; shared_with None means anyone may open it."""

    id: str
    title: str
    sheets: list[Sheet] = field(default_factory=list)
    shared_with: set[str] | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.id,
            "properties": {"title": self.title, "locale": "ja_JP", "autoRecalc": "ON_CHANGE",
                           "timeZone": "Asia/Tokyo"},
            "sheets": [{"properties": s.properties()} for s in self.sheets],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.id}/edit",
        }

    def titles(self) -> set[str]:
        return {s.title for s in self.sheets}

    def resolve(self, text: str) -> tuple[Sheet, A1]:
        """The sheet and range a range string names (no sheet: the first sheet)."""
        try:
            a1 = parse(text, self.titles())
        except ValueError as err:
            raise bad_range(text) from err
        title = a1.sheet if a1.sheet is not None else self.sheets[0].title
        sheet = next((s for s in self.sheets if s.title == title), None)
        if sheet is None:
            raise bad_range(text)
        return sheet, a1

    def add_sheet(self, title: str, rows: int = 1000, cols: int = 26) -> Sheet:
        if title in self.titles():
            raise ApiError(400, f'Invalid requests[0].addSheet: A sheet with the name "{title}" '
                           "already exists. Please enter another name.", "INVALID_ARGUMENT")
        sheet = Sheet(title, len(self.sheets), row_count=rows, col_count=cols)
        self.sheets.append(sheet)
        return sheet

    def by_id(self, sheet_id: int) -> Sheet:
        sheet = next((s for s in self.sheets if s.sheet_id == sheet_id), None)
        if sheet is None:
            raise ApiError(400, f"No grid with id: {sheet_id}", "INVALID_ARGUMENT")
        return sheet


def range_name(sheet: Sheet, box: tuple[int, int, int, int]) -> str:
    """Google's notation for a box in a sheet."""
    return render(sheet.title, *box)
