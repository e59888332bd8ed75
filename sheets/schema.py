"""Sheet names, their columns, row types, and the parsing of organizer-typed rows."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sheets.dates import fold, parse_date, parse_datetime, parse_time, parse_time_range

COLUMNS: dict[str, tuple[str, ...]] = {
    "events": (
        "id", "title", "date", "start", "end", "venue", "online_url", "capacity",
        "observer_capacity", "deadline", "status", "description", "preparation", "recording_url",
    ),
    "schedule": ("event_id", "start", "end", "title", "detail"),
    "faq": ("keywords", "question", "answer", "category", "url", "enabled"),
    "settings": ("key", "value"),
    "registrations": (
        "id", "created_at", "event_id", "user_id", "display_name", "role", "level", "status",
        "room", "updated_at",
    ),
    "feedback": (
        "id", "created_at", "event_id", "user_id", "rating", "impression", "use_cases",
        "challenges",
    ),
    "facilities": ("name", "category", "address", "lat", "lng", "hours", "phone", "url"),
    "attendance": ("id", "created_at", "event_id", "user_id", "display_name"),
    "deliveries": ("id", "created_at", "event_id", "kind", "user_id", "summary", "retry_key"),
    "surveys": ("id", "title", "intro", "outro", "audience", "opens", "closes", "enabled"),
    "questions": ("survey_id", "order", "key", "text", "type", "choices", "required", "min",
                  "max", "pattern", "help", "skip_if"),
}
ORGANIZER_SHEETS = ("events", "schedule", "faq", "settings", "facilities", "surveys",
                    "questions")
BOT_SHEETS = ("registrations", "feedback", "attendance", "deliveries")
ALL_SHEETS = ORGANIZER_SHEETS + BOT_SHEETS
READ_SHEETS = ORGANIZER_SHEETS + ("registrations", "feedback", "attendance")  # not deliveries
EVENT_STATUSES = ("open", "closed", "cancelled")
ROLES = ("participant", "observer")
REG_STATUSES = ("confirmed", "waitlisted", "cancelled")
FALSE_WORDS = {"false", "no", "0", "いいえ", "無効", "×", "off", "n"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a sheet, located by sheet, row and column."""

    sheet: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"{self.sheet}!{self.column or '-'} 行{self.row}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Event:
    """An event row, parsed."""

    id: str
    title: str
    date: dt.date
    start: dt.time | None = None
    end: dt.time | None = None
    venue: str = ""
    online_url: str = ""
    capacity: int | None = None
    observer_capacity: int | None = None
    deadline: dt.datetime | None = None
    status: str = "open"
    description: str = ""
    preparation: str = ""
    recording_url: str = ""

    @property
    def starts_at(self) -> dt.datetime:
        """Naive local start (midnight when no start time is given)."""
        return dt.datetime.combine(self.date, self.start or dt.time(0, 0))

    @property
    def ends_at(self) -> dt.datetime:
        """Naive local end (end of day when no end time is given)."""
        return dt.datetime.combine(self.date, self.end or dt.time(23, 59))

    def capacity_for(self, role: str) -> int | None:
        """Seats for one role; None means unlimited."""
        return self.capacity if role == "participant" else self.observer_capacity


@dataclass(frozen=True)
class ScheduleItem:
    """One line of an event's timetable."""

    event_id: str
    start: dt.time
    end: dt.time | None
    title: str
    detail: str = ""


@dataclass(frozen=True)
class Faq:
    """One FAQ entry."""

    keywords: tuple[str, ...]
    question: str
    answer: str
    category: str = ""
    url: str = ""


@dataclass(frozen=True)
class Facility:
    """A public facility for the residents' lookup demo."""

    name: str
    category: str
    address: str
    lat: float
    lng: float
    hours: str = ""
    phone: str = ""
    url: str = ""


@dataclass
class Registration:
    """One registration row as the bot wrote it (its current status)."""

    id: str
    created_at: str
    event_id: str
    user_id: str
    display_name: str = ""
    role: str = "participant"
    level: str = ""
    status: str = "confirmed"
    room: str = ""
    updated_at: str = ""

    @property
    def active(self) -> bool:
        """True unless cancelled."""
        return self.status != "cancelled"


@dataclass
class Organizer:
    """Everything parsed from the sheets, and the problems found on the way."""

    events: list[Event] = field(default_factory=list)
    schedule: list[ScheduleItem] = field(default_factory=list)
    faq: list[Faq] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    facilities: list[Facility] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)
    surveys: dict[str, Any] = field(default_factory=dict)
    bot_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def event(self, event_id: str) -> Event | None:
        """The event with this id (compared after folding width and case)."""
        key = fold(event_id)
        return next((e for e in self.events if fold(e.id) == key), None)


def cell_text(value: Any) -> str:
    """A cell as text: numbers without a spurious .0, None as empty."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def parse_count(value: Any) -> int | None:
    """A capacity cell: blank is unlimited, otherwise a whole number of 0 or more."""
    text = fold(cell_text(value)).removesuffix("名").removesuffix("人")
    if not text:
        return None
    number = int(text)
    if number < 0:
        raise ValueError("0以上の整数にしてください")
    return number


def rows_as_dicts(
    sheet: str, rows: Sequence[Sequence[Any]], problems: list[Problem]
) -> Iterable[tuple[int, dict[str, Any]]]:
    """Yield (row number, {key: cell}) for every non-blank row under the header."""
    if not rows:
        problems.append(Problem(sheet, 1, "", "ヘッダー行がありません"))
        return
    header = [fold(cell_text(h)) for h in rows[0]]
    missing = [c for c in COLUMNS[sheet] if c not in header]
    for column in missing:
        problems.append(Problem(sheet, 1, column, "ヘッダーに列がありません"))
    for key in header:
        guess = difflib.get_close_matches(key, missing, n=1)
        if key and guess:
            problems.append(Problem(sheet, 1, key, f"不明な列名です。'{guess[0]}' の誤りでは?"))
    for number, row in enumerate(rows[1:], start=2):
        if all(cell_text(v) == "" for v in row):
            continue
        yield number, {key: row[i] if i < len(row) else None for i, key in enumerate(header) if key}


def _parse_rows(
    sheet: str,
    rows: Sequence[Sequence[Any]],
    build: Callable[[dict[str, Any]], Any],
    problems: list[Problem],
) -> list[tuple[int, Any]]:
    parsed: list[tuple[int, Any]] = []
    for number, row in rows_as_dicts(sheet, rows, problems):
        try:
            parsed.append((number, build(row)))
        except RowError as err:
            problems.append(Problem(sheet, number, err.column, err.message))
    return parsed


class RowError(Exception):
    """A cell that cannot be read; the row is skipped and reported."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"{column}: {message}")
        self.column = column
        self.message = message


def read_cell(row: dict[str, Any], column: str, parse: Callable[[Any], Any]) -> Any:
    """A cell parsed, or RowError naming the column."""
    try:
        return parse(row.get(column))
    except (ValueError, TypeError, OverflowError) as err:
        raise RowError(column, str(err) or "読めない値です") from err


def required_text(row: dict[str, Any], column: str) -> str:
    """A cell that must not be blank."""
    text = cell_text(row.get(column))
    if not text:
        raise RowError(column, "空欄にはできません")
    return text


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if cell_text(value) == "" else parse(value)


def build_event(row: dict[str, Any]) -> Event:
    """Parse one events row; raises RowError naming the bad column."""
    start, end_from_start = read_cell(row, "start", _optional(parse_time_range)) or (None, None)
    end = read_cell(row, "end", _optional(parse_time)) or end_from_start
    status = fold(cell_text(row.get("status"))) or "open"
    if status not in EVENT_STATUSES:
        raise RowError("status", f"open / closed / cancelled のいずれかにしてください: {status!r}")
    deadline = read_cell(row, "deadline", _optional(lambda v: parse_datetime(v, dt.time(23, 59))))
    return Event(
        id=required_text(row, "id"), title=required_text(row, "title"),
        date=read_cell(row, "date", parse_date), start=start, end=end,
        venue=cell_text(row.get("venue")), online_url=cell_text(row.get("online_url")),
        capacity=read_cell(row, "capacity", parse_count),
        observer_capacity=read_cell(row, "observer_capacity", parse_count),
        deadline=deadline, status=status,
        description=cell_text(row.get("description")),
        preparation=cell_text(row.get("preparation")),
        recording_url=cell_text(row.get("recording_url")),
    )


def build_schedule(row: dict[str, Any]) -> ScheduleItem:
    """Parse one schedule row."""
    start, end_from_start = read_cell(row, "start", parse_time_range)
    return ScheduleItem(
        event_id=required_text(row, "event_id"), start=start,
        end=read_cell(row, "end", _optional(parse_time)) or end_from_start,
        title=required_text(row, "title"), detail=cell_text(row.get("detail")),
    )


def build_faq(row: dict[str, Any]) -> Faq | None:
    """Parse one FAQ row; a disabled row gives None."""
    if fold(cell_text(row.get("enabled"))) in FALSE_WORDS:
        return None
    words = cell_text(row.get("keywords")).replace("、", ",").replace("，", ",")
    return Faq(
        keywords=tuple(w.strip() for w in words.split(",") if w.strip()),
        question=required_text(row, "question"), answer=required_text(row, "answer"),
        category=cell_text(row.get("category")), url=cell_text(row.get("url")),
    )


def _coordinate(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        number = float(cell_text(value))
        if not low <= number <= high:
            raise ValueError(f"{low}〜{high} の範囲にしてください")
        return number
    return parse


def build_facility(row: dict[str, Any]) -> Facility:
    """Parse one facilities row."""
    return Facility(
        name=required_text(row, "name"), category=cell_text(row.get("category")),
        address=cell_text(row.get("address")),
        lat=read_cell(row, "lat", _coordinate(-90, 90)), lng=read_cell(row, "lng", _coordinate(-180, 180)),
        hours=cell_text(row.get("hours")), phone=cell_text(row.get("phone")),
        url=cell_text(row.get("url")),
    )


def build_registration(row: dict[str, Any]) -> Registration:
    """Parse one registrations row (written by the bot, perhaps edited by hand)."""
    values = {key: cell_text(row.get(key)) for key in COLUMNS["registrations"]}
    if not values["id"] or not values["event_id"] or not values["user_id"]:
        raise RowError("id", "id / event_id / user_id が空欄です")
    if values["status"] not in REG_STATUSES:
        raise RowError("status", f"confirmed / waitlisted / cancelled のいずれかにしてください: {values['status']!r}")
    if values["role"] not in ROLES:
        raise RowError("role", f"participant / observer のいずれかにしてください: {values['role']!r}")
    return Registration(**values)


def parse_workbook(raw: dict[str, Sequence[Sequence[Any]]]) -> Organizer:
    """Turn the raw rows of every sheet into an Organizer, collecting problems."""
    problems: list[Problem] = []
    for sheet in READ_SHEETS:
        if sheet not in raw:
            problems.append(Problem(sheet, 0, "", "シートがありません"))
    org = Organizer(problems=problems)
    org.events = _unique_events(_parse_rows("events", raw.get("events") or [[*COLUMNS["events"]]],
                                            build_event, problems), problems)
    known = {fold(e.id) for e in org.events}
    schedule = _parse_rows("schedule", raw.get("schedule") or [[*COLUMNS["schedule"]]],
                           build_schedule, problems)
    org.schedule = _known_schedule(schedule, known, problems)
    faq = _parse_rows("faq", raw.get("faq") or [[*COLUMNS["faq"]]], build_faq, problems)
    org.faq = [f for _, f in faq if f is not None]
    org.settings = _settings(raw.get("settings") or [[*COLUMNS["settings"]]], problems)
    org.facilities = [f for _, f in _parse_rows(
        "facilities", raw.get("facilities") or [[*COLUMNS["facilities"]]], build_facility, problems)]
    org.registrations = [r for _, r in _parse_rows(
        "registrations", raw.get("registrations") or [[*COLUMNS["registrations"]]],
        build_registration, problems)]
    for sheet in ("feedback", "attendance"):
        rows = raw.get(sheet) or [[*COLUMNS[sheet]]]
        org.bot_rows[sheet] = [{k: cell_text(v) for k, v in row.items()}
                               for _, row in rows_as_dicts(sheet, rows, problems)]
    from sheets.surveys import parse_surveys

    org.surveys = parse_surveys(raw.get("surveys") or [[*COLUMNS["surveys"]]],
                                raw.get("questions") or [[*COLUMNS["questions"]]], problems)
    for sheet, rows in raw.items():
        if sheet.startswith("answers_") and rows:
            header = [fold(cell_text(h)) for h in rows[0]]
            org.bot_rows[sheet] = [{k: cell_text(v) for k, v in zip(header, r, strict=False) if k}
                                   for r in rows[1:] if any(cell_text(v) for v in r)]
    return org


def _unique_events(events: list[tuple[int, Event]], problems: list[Problem]) -> list[Event]:
    seen: set[str] = set()
    unique = []
    for number, event in events:
        if fold(event.id) in seen:
            problems.append(Problem("events", number, "id", f"id が重複しています: {event.id}"))
            continue
        seen.add(fold(event.id))
        unique.append(event)
    return unique


def _known_schedule(
    items: list[tuple[int, ScheduleItem]], known: set[str], problems: list[Problem]
) -> list[ScheduleItem]:
    kept = []
    for number, item in items:
        if fold(item.event_id) in known:
            kept.append(item)
        else:
            problems.append(Problem("schedule", number, "event_id",
                                    f"events にない id です: {item.event_id}"))
    return sorted(kept, key=lambda i: i.start)


def _settings(rows: Sequence[Sequence[Any]], problems: list[Problem]) -> dict[str, str]:
    return {
        fold(cell_text(row.get("key"))): cell_text(row.get("value"))
        for _, row in rows_as_dicts("settings", rows, problems)
        if cell_text(row.get("key"))
    }


