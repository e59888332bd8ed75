"""Reading organizer-typed rows: cells as text, problems located by sheet, row and column."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from domain.dates import Unreadable, word_key

FALSE_WORDS = {"false", "no", "0", "いいえ", "無効", "×", "off", "n"}
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a sheet, located by sheet, row and column."""

    sheet: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = self.sheet + (f"!{self.column}" if self.column else "")
        where += f" 行{self.row}" if self.row else ""
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class CellError:
    """One unreadable cell of a row: its column and the reason, in Japanese."""

    column: str
    message: str


class RowError(Exception):
    """A row with one or more unreadable cells; the row is skipped and each cell reported."""

    def __init__(self, errors: Sequence[CellError]) -> None:
        super().__init__("; ".join(f"{e.column}: {e.message}" for e in errors))
        self.errors = tuple(errors)


def cell_text(value: Any) -> str:
    """A cell as text: numbers without a spurious .0, None as empty."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def reason(err: Exception, value: Any) -> str:
    """A parse failure in Japanese; Python's own (English) exception text never gets through."""
    if isinstance(err, Unreadable):
        return str(err)
    return f"「{cell_text(value)}」は読めない値です"


class Cells:
    """One row read column by column; every unreadable cell is remembered, not just the first."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.errors: list[CellError] = []

    def text(self, column: str) -> str:
        """A cell as text (blank allowed)."""
        return cell_text(self.row.get(column))

    def read(self, column: str, parse: Callable[[Any], Any]) -> Any:
        """A cell parsed, or None with the reason remembered."""
        value = self.row.get(column)
        try:
            return parse(value)
        except (ValueError, TypeError, OverflowError) as err:
            self.fail(column, reason(err, value))
            return None

    def required(self, column: str) -> str:
        """A cell that must not be blank."""
        text = self.text(column)
        if not text:
            self.fail(column, "空欄にはできません")
        return text

    def one_of(self, column: str, value: str, allowed: Sequence[str]) -> str:
        """A value that must be one of the allowed words."""
        if value not in allowed:
            self.fail(column, f"「{value}」は {' / '.join(allowed)} のいずれかにしてください")
        return value

    def fail(self, column: str, message: str) -> None:
        """Remember one bad cell."""
        self.errors.append(CellError(column, message))

    def build(self, kind: Callable[..., T], **values: Any) -> T:
        """The row's object, or RowError listing every bad cell."""
        if self.errors:
            raise RowError(self.errors)
        return kind(**values)


def optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The parser, except that a blank cell gives None."""
    return lambda value: None if cell_text(value) == "" else parse(value)


def rows_as_dicts(
    sheet: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], problems: list[Problem],
    optional_columns: Sequence[str] = (),
) -> Iterable[tuple[int, dict[str, Any]]]:
    """Yield (row number, {key: cell}) for every non-blank row under the header; a missing
    column is a problem unless it is one of optional_columns."""
    if not rows:
        problems.append(Problem(sheet, 1, "", "ヘッダー行がありません"))
        return
    header = [word_key(cell_text(h)) for h in rows[0]]
    missing = [c for c in columns if c not in header]
    for column in (c for c in missing if c not in optional_columns):
        problems.append(Problem(sheet, 1, column, "ヘッダーに列がありません"))
    for key in header:
        guess = difflib.get_close_matches(key, missing, n=1)
        if key and guess:
            problems.append(Problem(sheet, 1, key, f"不明な列名です。'{guess[0]}' の誤りでは?"))
    for number, row in enumerate(rows[1:], start=2):
        if all(cell_text(v) == "" for v in row):
            continue
        yield number, {key: row[i] if i < len(row) else None for i, key in enumerate(header) if key}


def parse_rows(
    sheet: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    build: Callable[[dict[str, Any]], T | None],
    problems: list[Problem],
    optional_columns: Sequence[str] = (),
) -> list[tuple[int, T]]:
    """(row number, object) for every good row; each bad cell of a bad row becomes a Problem."""
    parsed: list[tuple[int, T]] = []
    for number, row in rows_as_dicts(sheet, columns, rows, problems, optional_columns):
        try:
            item = build(row)
        except RowError as err:
            problems.extend(Problem(sheet, number, e.column, e.message) for e in err.errors)
            continue
        if item is not None:
            parsed.append((number, item))
    return parsed
