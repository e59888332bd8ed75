"""Parsing of dates and times as organizers type them into a sheet."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925, "r": 2018, "h": 1988, "s": 1925}
RANGE_SEPARATORS = "〜～~－–—-"

_DATE_PATTERNS = (
    re.compile(r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})$"),
    re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日?$"),
    re.compile(r"^(?P<era>令和|平成|昭和|[rhs])(?P<y>\d{1,2}|元)[年./-](?P<m>\d{1,2})[月./-](?P<d>\d{1,2})日?$"),
)
_TIME_PATTERNS = (
    re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})(:\d{2})?$"),
    re.compile(r"^(?P<h>\d{1,2})時((?P<m>\d{1,2})分|半)?$"),
    re.compile(r"^(?P<h>\d{1,2})(?P<m>\d{2})$"),
)
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def fold(text: str) -> str:
    """NFKC-normalise, lower-case and strip white space inside and around."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _strip_weekday(text: str) -> str:
    return re.sub(r"[(（][^)）]*[)）]$", "", text)


def parse_date(value: object) -> dt.date:
    """Read a date typed as 2020-04-30, 2020/4/30, 2020年4月30日 or 令和2年4月30日."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 < value < 200000:
        return (_EXCEL_EPOCH + dt.timedelta(days=float(value))).date()
    text = _strip_weekday(fold(str(value or "")))
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            return _date_from_match(match)
    raise ValueError(f"日付として読めません: {value!r}")


def _date_from_match(match: re.Match[str]) -> dt.date:
    parts = match.groupdict()
    year_text = parts["y"]
    if parts.get("era"):
        year = ERAS[parts["era"]] + (1 if year_text == "元" else int(year_text))
    else:
        year = int(year_text)
    return dt.date(year, int(parts["m"]), int(parts["d"]))


def parse_time(value: object) -> dt.time:
    """Read a time typed as 19:00, 19時, 19時30分 or 1900."""
    if isinstance(value, dt.datetime):
        return value.time().replace(second=0, microsecond=0)
    if isinstance(value, dt.time):
        return value.replace(second=0, microsecond=0)
    if isinstance(value, float) and 0 <= value < 1:
        minutes = round(value * 24 * 60)
        return dt.time(minutes // 60 % 24, minutes % 60)
    text = fold(str(value if value is not None else ""))
    for pattern in _TIME_PATTERNS:
        match = pattern.match(text)
        if match:
            minute = match.groupdict().get("m")
            minute_value = 30 if text.endswith("半") else int(minute or 0)
            return dt.time(int(match["h"]), minute_value)
    raise ValueError(f"時刻として読めません: {value!r}")


def parse_time_range(value: object) -> tuple[dt.time, dt.time | None]:
    """Read a start time, or a range such as 19:00〜20:30 typed into one cell."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        for sep in RANGE_SEPARATORS:
            if sep in text:
                start, _, end = text.partition(sep)
                return parse_time(start), parse_time(end)
    return parse_time(value), None


def parse_datetime(value: object, default_time: dt.time) -> dt.datetime:
    """Read a date with an optional time after it (naive, in the bot's zone)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        head, _, tail = text.partition(" ")
        if tail.strip():
            return dt.datetime.combine(parse_date(head), parse_time(tail.strip()))
    return dt.datetime.combine(parse_date(value), default_time)
