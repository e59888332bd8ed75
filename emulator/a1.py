"""A1 notation: parsing ranges like 'My Sheet'!A1:C3 and writing them back as Google does."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CELL = re.compile(r"^([A-Za-z]*)(\d*)$")
_PLAIN_TITLE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class A1:
    """A parsed range; None bounds are open (to the grid's edge)."""

    sheet: str | None
    r1: int | None = None
    c1: int | None = None
    r2: int | None = None
    c2: int | None = None
    whole_sheet: bool = False


def col_number(letters: str) -> int:
    """'A' is 1, 'Z' 26, 'AA' 27."""
    number = 0
    for ch in letters.upper():
        number = number * 26 + (ord(ch) - 64)
    return number


def col_letters(number: int) -> str:
    """1 is 'A', 27 'AA'."""
    out = ""
    while number:
        number, rem = divmod(number - 1, 26)
        out = chr(65 + rem) + out
    return out


def quote_title(title: str) -> str:
    """Quote a sheet title when Google would ('My Sheet' but Sheet1)."""
    if _PLAIN_TITLE.match(title) and not re.fullmatch(r"[A-Za-z]{1,3}\d+", title):
        return title
    return "'" + title.replace("'", "''") + "'"


def _split_title(text: str) -> tuple[str | None, str]:
    if text.startswith("'"):
        end = 1
        while end < len(text):
            if text[end] == "'" and text[end + 1:end + 2] == "'":
                end += 2
                continue
            if text[end] == "'":
                break
            end += 1
        title = text[1:end].replace("''", "'")
        rest = text[end + 1:]
        return title, rest[1:] if rest.startswith("!") else rest
    if "!" in text:
        title, _, rest = text.rpartition("!")
        return title, rest
    return None, text


def _cell(ref: str) -> tuple[int | None, int | None]:
    match = _CELL.match(ref)
    if not match:
        raise ValueError(f"Unable to parse range: {ref}")
    letters, digits = match.groups()
    return (int(digits) if digits else None), (col_number(letters) if letters else None)


def parse(text: str, titles: set[str] | frozenset[str] = frozenset()) -> A1:
    """Parse a range; a bare name that is a sheet title means the whole sheet."""
    title, ref = _split_title(text)
    if title is None and (ref in titles or not _is_ref(ref)):
        return A1(ref, whole_sheet=True)
    if not ref:
        return A1(title, whole_sheet=True)
    first, _, second = ref.partition(":")
    r1, c1 = _cell(first)
    if not second:
        if r1 is None or c1 is None:
            raise ValueError(f"Unable to parse range: {text}")
        return A1(title, r1, c1, r1, c1)
    r2, c2 = _cell(second)
    return A1(title, r1, c1, r2, c2)


def _is_ref(ref: str) -> bool:
    return all(_CELL.match(part) for part in ref.split(":", 1)) and bool(ref)


def render(title: str, r1: int, c1: int, r2: int, c2: int) -> str:
    """Google's notation for a concrete range: Sheet1!B1 or 'My Sheet'!A1:C2."""
    start = f"{col_letters(c1)}{r1}"
    cells = start if (r1, c1) == (r2, c2) else f"{start}:{col_letters(c2)}{r2}"
    return f"{quote_title(title)}!{cells}"
