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
_DURATION_PART = re.compile(r"(\d+)(日|時間|分|days?|hours?|min(?:utes?)?|d|h|m)")
_DURATION_SECONDS = {"日": 86400, "d": 86400, "day": 86400, "days": 86400, "時間": 3600,
                     "h": 3600, "hour": 3600, "hours": 3600, "分": 60, "m": 60, "min": 60,
                     "minute": 60, "minutes": 60}


class Unreadable(ValueError):
    """A typed value that cannot be read; the message is in Japanese and shows the value."""


def shown(value: object) -> str:
    """A typed value as the organizer sees it, for messages."""
    return "" if value is None else str(value).strip()


def word_key(text: str) -> str:
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
    text = _strip_weekday(word_key(str(value or "")))
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            return _date_from_match(match, shown(value))
    raise Unreadable(f"「{shown(value)}」は日付として読めません (例: 2026-04-30, 令和8年4月30日)")


def _date_from_match(match: re.Match[str], typed: str) -> dt.date:
    parts = match.groupdict()
    year_text = parts["y"]
    if parts.get("era"):
        year = ERAS[parts["era"]] + (1 if year_text == "元" else int(year_text))
    else:
        year = int(year_text)
    return _checked_date(year, int(parts["m"]), int(parts["d"]), typed)


def _checked_date(year: int, month: int, day: int, typed: str) -> dt.date:
    # datetime's own errors ("month must be in 1..12") are English; say it in Japanese.
    reason = f"{month}月{day}日はありません"
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        reason = f"年は{dt.MINYEAR}〜{dt.MAXYEAR}"
    elif not 1 <= month <= 12:
        reason = "月は1〜12"
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise Unreadable(f"「{typed}」は日付として読めません ({reason})") from None


def parse_time(value: object) -> dt.time:
    """Read a time typed as 19:00, 19時, 19時30分 or 1900."""
    if isinstance(value, dt.datetime):
        return value.time().replace(second=0, microsecond=0)
    if isinstance(value, dt.time):
        return value.replace(second=0, microsecond=0)
    if isinstance(value, float) and 0 <= value < 1:
        minutes = round(value * 24 * 60)
        return dt.time(minutes // 60 % 24, minutes % 60)
    text = word_key(str(value if value is not None else ""))
    for pattern in _TIME_PATTERNS:
        match = pattern.match(text)
        if match:
            minute = match.groupdict().get("m")
            minute_value = 30 if text.endswith("半") else int(minute or 0)
            return _checked_time(int(match["h"]), minute_value, shown(value))
    raise Unreadable(f"「{shown(value)}」は時刻として読めません (例: 19:00, 19時半)")


def _checked_time(hour: int, minute: int, typed: str) -> dt.time:
    if not 0 <= hour <= 23:
        raise Unreadable(f"「{typed}」は時刻として読めません (0〜23時)")
    if not 0 <= minute <= 59:
        raise Unreadable(f"「{typed}」は時刻として読めません (分は0〜59)")
    return dt.time(hour, minute)


def parse_time_range(value: object) -> tuple[dt.time, dt.time | None]:
    """Read a start time, or a range such as 19:00〜20:30 typed into one cell."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        for sep in RANGE_SEPARATORS:
            if sep in text:
                start, _, end = text.partition(sep)
                return parse_time(start), parse_time(end)
    return parse_time(value), None


def parse_duration(value: object) -> dt.timedelta:
    """Read a length of time typed as 24h, 2d, 30m, 24時間, 2日 or 30分, or parts of them
    (1日12時間); a trailing 前 (before) is allowed."""
    text = word_key(str(value or "")).removesuffix("前").removesuffix("before")
    parts = _DURATION_PART.findall(text)
    seconds = sum(int(n) * _DURATION_SECONDS[unit] for n, unit in parts)
    if not parts or "".join(n + unit for n, unit in parts) != text or seconds <= 0:
        raise Unreadable(f"「{shown(value)}」は期間として読めません (例: 24h, 2d, 30m, 24時間, 2日)")
    return dt.timedelta(seconds=seconds)


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
