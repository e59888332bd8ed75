"""Sheet names, their columns, row types, and the parsing of organizer-typed rows."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.dates import (
    Unreadable,
    parse_date,
    parse_datetime,
    parse_duration,
    parse_time,
    parse_time_range,
    word_key,
)
from domain.rows import FALSE_WORDS, Cells, Problem, cell_text, optional, parse_rows, rows_as_dicts
from domain.surveys import QUESTION_COLUMNS, SURVEY_COLUMNS, Survey, parse_surveys

COLUMNS: dict[str, tuple[str, ...]] = {
    "events": (
        "id", "title", "date", "start", "end", "venue", "online_url", "capacity",
        "observer_capacity", "deadline", "status", "description", "preparation", "recording_url",
        "allocation", "lottery_at", "confirm_within", "reconfirm",
    ),
    "schedule": ("event_id", "start", "end", "title", "detail"),
    "faq": ("keywords", "question", "answer", "category", "url", "enabled"),
    "settings": ("key", "value"),
    "registrations": (
        "id", "created_at", "event_id", "user_id", "display_name", "role", "level", "status",
        "room", "updated_at", "queue", "offer_until", "reconfirmed",
    ),
    "feedback": (
        "id", "created_at", "event_id", "user_id", "rating", "impression", "use_cases",
        "challenges",
    ),
    "facilities": ("name", "category", "address", "lat", "lng", "hours", "phone", "url"),
    "attendance": ("id", "created_at", "event_id", "user_id", "display_name"),
    "deliveries": ("id", "created_at", "event_id", "kind", "user_id", "summary", "retry_key"),
    "lottery": (
        "id", "drawn_at", "event_id", "role", "capacity", "applicants", "winners", "order",
        "notified_at",
    ),
    "unanswered": ("id", "first_asked_at", "last_asked_at", "text", "times", "status"),
    "surveys": SURVEY_COLUMNS,
    "questions": QUESTION_COLUMNS,
}
# Columns a sheet may lack (added after workbooks were in use): no problem is reported for them.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("allocation", "lottery_at", "confirm_within", "reconfirm"),
    "registrations": ("queue", "offer_until", "reconfirmed"),
}
ORGANIZER_SHEETS = ("events", "schedule", "faq", "settings", "facilities", "surveys",
                    "questions")
BOT_SHEETS = ("registrations", "feedback", "attendance", "lottery", "unanswered",
              "deliveries")
ALL_SHEETS = ORGANIZER_SHEETS + BOT_SHEETS
READ_SHEETS = ORGANIZER_SHEETS + ("registrations", "feedback", "attendance", "lottery",
                                   "unanswered")
# made by the first draw, or the first question not answered: a workbook without them is fine
OPTIONAL_SHEETS = ("lottery", "unanswered")
# the only cells of the bot's sheets an organizer changes by hand; every other one is the bot's
ORGANIZER_EDITABLE: dict[str, tuple[str, ...]] = {"registrations": ("status", "room"),
                                                  "unanswered": ("status",)}


def read_back(sheet: str) -> bool:
    """Whether the bot reads this sheet back, so that its ledger can check the sheet kept what
    the bot wrote (deliveries are written only, as a log)."""
    return sheet in READ_SHEETS or sheet.startswith("answers_")
EVENT_STATUSES = ("open", "closed", "cancelled")
ALLOCATIONS = ("first_come", "lottery")
ALLOCATION_WORDS = {"先着": "first_come", "先着順": "first_come", "抽選": "lottery"}
LOTTERY_TIME = dt.time(9, 0)  # a draw typed as a date alone happens at 9:00
ROLES = ("participant", "observer")
# applied: a lottery entry; offered: a seat held for a promoted person until they answer;
# declined / expired: an offer refused or not answered in time (like cancelled, holding nothing)
REG_STATUSES = ("confirmed", "waitlisted", "cancelled", "applied", "offered", "declined",
                "expired")
SEATED = ("confirmed", "offered")  # statuses that hold a seat
ENDED = ("cancelled", "declined", "expired")
USER_ID = re.compile(r"U[0-9a-f]{32}")  # a LINE user id; linebot_app.bot.context.admin_ids uses it too


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
    allocation: str = "first_come"  # or "lottery": applications until lottery_at, then a draw
    lottery_at: dt.datetime | None = None
    confirm_within: dt.timedelta | None = None  # a promoted person confirms within this
    reconfirm: dt.timedelta | None = None  # ask confirmed people this long before the start

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


@dataclass(slots=True)
class Registration:
    """One registration row as the bot wrote it (its current status); slotted, as thousands are
    held."""

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
    queue: str = ""  # the waitlist's order key when not created_at (a draw's loser)
    offer_until: str = ""  # an offered seat's deadline
    reconfirmed: str = ""  # when the person answered 参加する to the reconfirmation

    @property
    def active(self) -> bool:
        """True unless cancelled, declined or expired."""
        return self.status not in ENDED

    @property
    def seated(self) -> bool:
        """Whether the registration holds a seat (confirmed, or offered and not answered)."""
        return self.status in SEATED


@dataclass
class Workbook:
    """The organizer's workbook as the bot reads it: every sheet parsed (the .xlsx file or the
    Google spreadsheet alike), and the problems found on the way."""

    events: list[Event] = field(default_factory=list)
    schedule: list[ScheduleItem] = field(default_factory=list)
    faq: list[Faq] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    facilities: list[Facility] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)
    surveys: dict[str, Survey] = field(default_factory=dict)
    bot_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def event(self, event_id: str) -> Event | None:
        """The event with this id (compared after folding width and case)."""
        key = word_key(event_id)
        return next((e for e in self.events if word_key(e.id) == key), None)


def parse_count(value: Any) -> int | None:
    """A capacity cell: blank is unlimited, otherwise a whole number of 0 or more."""
    text = word_key(cell_text(value)).removesuffix("名").removesuffix("人")
    if not text:
        return None
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise Unreadable(f"「{cell_text(value)}」は人数として読めません (0以上の整数、空欄は定員なし)")
    return number


def build_event(row: dict[str, Any]) -> Event:
    """Parse one events row; raises RowError listing every bad cell."""
    cells = Cells(row)
    start, end_from_start = cells.read("start", optional(parse_time_range)) or (None, None)
    end = cells.read("end", optional(parse_time)) or end_from_start
    status = cells.one_of("status", word_key(cells.text("status")) or "open", EVENT_STATUSES)
    date = cells.read("date", parse_date)
    allocation, lottery_at = _allocation(cells, date)
    return cells.build(
        Event, id=cells.required("id"), title=cells.required("title"),
        date=date, start=start, end=end,
        venue=cells.text("venue"), online_url=cells.text("online_url"),
        capacity=cells.read("capacity", parse_count),
        observer_capacity=cells.read("observer_capacity", parse_count),
        deadline=cells.read("deadline", optional(lambda v: parse_datetime(v, dt.time(23, 59)))),
        status=status, description=cells.text("description"),
        preparation=cells.text("preparation"), recording_url=cells.text("recording_url"),
        allocation=allocation, lottery_at=lottery_at,
        confirm_within=cells.read("confirm_within", optional(parse_duration)),
        reconfirm=cells.read("reconfirm", optional(parse_duration)),
    )


def _allocation(cells: Cells, day: dt.date | None) -> tuple[str, dt.datetime | None]:
    """How seats are given (first come, or a draw) and when the draw is; a lottery without a
    readable draw time, or with one not before the event's date, is a bad row."""
    typed = word_key(cells.text("allocation"))
    allocation = cells.one_of("allocation", ALLOCATION_WORDS.get(typed, typed) or "first_come",
                              ALLOCATIONS)
    lottery_at = cells.read("lottery_at", optional(lambda v: parse_datetime(v, LOTTERY_TIME)))
    if allocation == "lottery" and not cells.text("lottery_at"):
        cells.fail("lottery_at", "抽選のイベントには抽選の日時が要ります (例: 2027/1/10 12:00)")
    if lottery_at and day and lottery_at.date() >= day:
        cells.fail("lottery_at", f"抽選の日時 ({lottery_at:%Y-%m-%d %H:%M}) は開催日より前にしてください")
    return allocation, lottery_at


def build_schedule(row: dict[str, Any]) -> ScheduleItem:
    """Parse one schedule row."""
    cells = Cells(row)
    start, end_from_start = cells.read("start", parse_time_range) or (None, None)
    return cells.build(
        ScheduleItem, event_id=cells.required("event_id"), start=start,
        end=cells.read("end", optional(parse_time)) or end_from_start,
        title=cells.required("title"), detail=cells.text("detail"),
    )


def build_faq(row: dict[str, Any]) -> Faq | None:
    """Parse one FAQ row; a disabled row gives None."""
    cells = Cells(row)
    if word_key(cells.text("enabled")) in FALSE_WORDS:
        return None
    words = cells.text("keywords").replace("、", ",").replace("，", ",")
    return cells.build(
        Faq, keywords=tuple(w.strip() for w in words.split(",") if w.strip()),
        question=cells.required("question"), answer=cells.required("answer"),
        category=cells.text("category"), url=cells.text("url"),
    )


def _coordinate(name: str, low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        text = word_key(cell_text(value))
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not low <= number <= high:  # also false for nan
            raise Unreadable(f"「{cell_text(value)}」は{name}として読めません ({low:g}〜{high:g})")
        return number
    return parse


def build_facility(row: dict[str, Any]) -> Facility:
    """Parse one facilities row."""
    cells = Cells(row)
    return cells.build(
        Facility, name=cells.required("name"), category=cells.text("category"),
        address=cells.text("address"), lat=cells.read("lat", _coordinate("緯度", -90, 90)),
        lng=cells.read("lng", _coordinate("経度", -180, 180)), hours=cells.text("hours"),
        phone=cells.text("phone"), url=cells.text("url"),
    )


def build_registration(row: dict[str, Any]) -> Registration:
    """Parse one registrations row (written by the bot, perhaps edited by hand)."""
    cells = Cells(row)
    values = {key: cells.text(key) for key in COLUMNS["registrations"]}
    for key in ("id", "event_id", "user_id"):
        cells.required(key)
    cells.one_of("status", values["status"], REG_STATUSES)
    cells.one_of("role", values["role"], ROLES)
    return cells.build(Registration, **values)


def _stranded_applications(numbered: list[tuple[int, Registration]], events: list[Event]
                           ) -> list[Problem]:
    """Applications (status applied) for an event that is no longer a lottery: no draw will
    give them a seat, so the organizer is told what to do."""
    lottery = {e.id for e in events if e.allocation == "lottery" and e.lottery_at}
    known = {e.id for e in events}
    return [Problem("registrations", number, "status",
                    f"「{reg.event_id}」は抽選ではないため、この申し込みは抽選されません (events の "
                    "allocation を lottery に戻すか、status を confirmed / waitlisted / cancelled に)")
            for number, reg in numbered
            if reg.status == "applied" and reg.event_id in known and reg.event_id not in lottery]


def _sheet(raw: dict[str, Sequence[Sequence[Any]]], sheet: str) -> Sequence[Sequence[Any]]:
    return raw.get(sheet) or [[*COLUMNS[sheet]]]


def _parse(raw: dict[str, Sequence[Sequence[Any]]], sheet: str,
           build: Callable[[dict[str, Any]], Any], problems: list[Problem]) -> list[tuple[int, Any]]:
    return parse_rows(sheet, COLUMNS[sheet], _sheet(raw, sheet), build, problems,
                      OPTIONAL_COLUMNS.get(sheet, ()))


def parse_workbook(raw: dict[str, Sequence[Sequence[Any]]]) -> Workbook:
    """Turn the raw rows of every sheet into a Workbook, collecting problems."""
    problems: list[Problem] = []
    for sheet in READ_SHEETS:
        if sheet not in raw and sheet not in OPTIONAL_SHEETS:
            problems.append(Problem(sheet, 0, "", "シートがありません"))
    org = Workbook(problems=problems)
    org.events = _unique_events(_parse(raw, "events", build_event, problems), problems)
    known = {word_key(e.id) for e in org.events}
    org.schedule = _known_schedule(_parse(raw, "schedule", build_schedule, problems), known,
                                   problems)
    org.faq = [f for _, f in _parse(raw, "faq", build_faq, problems)]
    org.settings = _settings(_sheet(raw, "settings"), problems)
    org.facilities = [f for _, f in _parse(raw, "facilities", build_facility, problems)]
    numbered = _parse(raw, "registrations", build_registration, problems)
    org.registrations = [r for _, r in numbered]
    problems += _stranded_applications(numbered, org.events)
    for sheet in ("feedback", "attendance", "lottery", "unanswered"):
        org.bot_rows[sheet] = [{k: cell_text(v) for k, v in row.items()} for _, row in
                               rows_as_dicts(sheet, COLUMNS[sheet], _sheet(raw, sheet), problems)]
    org.surveys = parse_surveys(_sheet(raw, "surveys"), _sheet(raw, "questions"), problems)
    for sheet, rows in raw.items():
        if sheet.startswith("answers_") and rows:
            header = [word_key(cell_text(h)) for h in rows[0]]
            org.bot_rows[sheet] = [{k: cell_text(v) for k, v in zip(header, r, strict=False) if k}
                                   for r in rows[1:] if any(cell_text(v) for v in r)]
    return org


def _unique_events(events: list[tuple[int, Event]], problems: list[Problem]) -> list[Event]:
    seen: set[str] = set()
    unique = []
    for number, event in events:
        if word_key(event.id) in seen:
            problems.append(Problem("events", number, "id", f"id が重複しています: {event.id}"))
            continue
        seen.add(word_key(event.id))
        unique.append(event)
    return unique


def _known_schedule(
    items: list[tuple[int, ScheduleItem]], known: set[str], problems: list[Problem]
) -> list[ScheduleItem]:
    kept = []
    for number, item in items:
        if word_key(item.event_id) in known:
            kept.append(item)
        else:
            problems.append(Problem("schedule", number, "event_id",
                                    f"events にない id です: {item.event_id}"))
    return sorted(kept, key=lambda i: i.start)


def _settings(rows: Sequence[Sequence[Any]], problems: list[Problem]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for number, row in rows_as_dicts("settings", COLUMNS["settings"], rows, problems):
        key = word_key(cell_text(row.get("key")))
        checks = SETTING_CHECKS.get(key)
        if checks:
            problems.extend(Problem("settings", number, "value", message)
                            for message in checks(cell_text(row.get("value"))))
        if key:
            settings[key] = cell_text(row.get("value"))
    return settings


def feedback_audience_problems(value: str) -> list[str]:
    """feedback_audience is registrants (the default, also when blank) or anyone."""
    if word_key(value) in ("", "registrants", "anyone"):
        return []
    return [f"feedback_audience の「{value}」は registrants (参加登録した人だけ) か anyone "
            "(誰でも) で指定してください。registrants として扱います"]


def admin_id_problems(listed: str) -> list[str]:
    """What is wrong in a comma-separated admin_user_ids value (the bot ignores such entries)."""
    if not listed.strip():
        return []  # no admins at all is allowed
    entries = unicodedata.normalize("NFKC", listed).replace("、", ",").split(",")
    found = []
    for place, entry in enumerate((e.strip() for e in entries), start=1):
        if not entry:
            found.append(f"admin_user_ids の {place} 番目が空です (無視します)。余分な「,」を消してください")
        elif not USER_ID.fullmatch(entry):
            found.append(f"admin_user_ids の「{entry}」は LINE のユーザーID (U + 小文字の16進数32桁) "
                         "ではないので無視します")
    return found


SETTING_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "admin_user_ids": admin_id_problems, "feedback_audience": feedback_audience_problems}
