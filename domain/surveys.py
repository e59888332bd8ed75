"""Survey definitions typed into the surveys and questions sheets, and their checks."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.dates import Unreadable, parse_date, word_key
from domain.rows import FALSE_WORDS, Cells, Problem, cell_text, optional, parse_rows

SURVEY_COLUMNS = ("id", "title", "intro", "outro", "audience", "opens", "closes", "enabled")
QUESTION_COLUMNS = ("survey_id", "order", "key", "text", "type", "choices", "required", "min",
                    "max", "pattern", "help", "skip_if")
TYPES = ("text", "long_text", "number", "integer", "choice", "multi_choice", "yes_no", "date",
         "time", "phone", "email", "postal_code", "rating")
ANSWER_COLUMNS = ("id", "created_at", "user_id", "display_name")
TRUE_WORDS = {"true", "yes", "1", "はい", "必須", "○", "〇", "y", "on"}


@dataclass(frozen=True)
class Question:
    """One question of a survey."""

    survey_id: str
    order: float
    key: str
    text: str
    type: str = "text"
    choices: tuple[str, ...] = ()
    required: bool = False
    min: float | None = None
    max: float | None = None
    pattern: str = ""
    help: str = ""
    skip_if: tuple[str, str] | None = None


@dataclass
class Survey:
    """A survey, its questions in order, and who may answer it."""

    id: str
    title: str
    intro: str = ""
    outro: str = ""
    audience: str = "anyone"
    opens: dt.date | None = None
    closes: dt.date | None = None
    editable: bool = False
    questions: list[Question] = field(default_factory=list)

    @property
    def sheet(self) -> str:
        """Where confirmed answers go."""
        return "feedback" if self.id == "feedback" else f"answers_{self.id}"

    def is_open(self, today: dt.date) -> bool:
        """Whether today is within opens..closes."""
        return (self.opens is None or self.opens <= today) and (
            self.closes is None or today <= self.closes)


def _flag(value: Any, default: bool) -> bool:
    text = word_key(cell_text(value))
    if not text:
        return default
    return text in TRUE_WORDS or text not in FALSE_WORDS and default


def _number(value: Any) -> float | None:
    text = word_key(cell_text(value))
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise Unreadable(f"「{cell_text(value)}」は数値として読めません")
    return number


def _skip_if(value: Any) -> tuple[str, str] | None:
    text = cell_text(value)
    if not text:
        return None
    key, sep, answer = text.partition("=")
    if not sep or not key.strip():
        raise Unreadable(f"「{text}」は「キー=答え」の形にしてください (例: online_care=いいえ)")
    return key.strip(), answer.strip()


def _pattern(value: Any) -> str:
    pattern = cell_text(value)
    try:
        re.compile(pattern)
    except re.error as err:
        # re.error's text is English; its position is enough to find the mistake.
        where = f" ({err.pos + 1}文字目)" if err.pos is not None else ""
        raise Unreadable(f"「{pattern}」は正規表現として読めません{where}") from err
    return pattern


def _kind(value: Any) -> str:
    kind = word_key(cell_text(value)) or "text"
    if kind not in TYPES:
        raise Unreadable(f"「{kind}」は不明な種類です ({', '.join(TYPES)})")
    return kind


def build_question(row: dict[str, Any]) -> Question:
    """Parse one questions row; raises RowError listing every bad cell."""
    cells = Cells(row)
    kind = cells.read("type", _kind)
    choices = tuple(c.strip() for c in re.split(r"[,、，]", cells.text("choices")) if c.strip())
    if kind in ("choice", "multi_choice") and not choices:
        cells.fail("choices", "選択肢を「,」区切りで書いてください")
    low, high = cells.read("min", _number), cells.read("max", _number)
    if low is not None and high is not None and low > high:
        cells.fail("min", f"min ({low:g}) が max ({high:g}) より大きいです")
    return cells.build(
        Question, survey_id=cells.required("survey_id"), order=cells.read("order", _number) or 0.0,
        key=cells.required("key"), text=cells.required("text"), type=kind, choices=choices,
        required=_flag(row.get("required"), False), min=low, max=high,
        pattern=cells.read("pattern", _pattern), help=cells.text("help"),
        skip_if=cells.read("skip_if", _skip_if))


def build_survey(row: dict[str, Any]) -> Survey | None:
    """Parse one surveys row; a disabled one gives None."""
    if not _flag(row.get("enabled"), True):
        return None
    cells = Cells(row)
    audience = cells.text("audience") or "anyone"
    if not re.fullmatch(r"anyone|admins|registrants:\S+", audience):
        cells.fail("audience", f"「{audience}」は anyone / registrants:<イベントID> / admins の"
                               "いずれかにしてください")
    return cells.build(
        Survey, id=cells.required("id"), title=cells.required("title"),
        intro=cells.text("intro"), outro=cells.text("outro"), audience=audience,
        opens=cells.read("opens", optional(parse_date)),
        closes=cells.read("closes", optional(parse_date)),
        editable=_flag(row.get("editable"), False))


def _attach(survey: Survey, questions: list[tuple[int, Question]], problems: list[Problem]
            ) -> None:
    seen: set[str] = set()
    for number, q in sorted(questions, key=lambda pair: pair[1].order):
        if q.key in seen or q.key in ANSWER_COLUMNS:
            problems.append(Problem("questions", number, "key", f"キーが重複しています: {q.key}"))
            continue
        if q.skip_if and q.skip_if[0] not in seen:
            problems.append(Problem("questions", number, "skip_if",
                                    f"前の質問にないキーです: {q.skip_if[0]}"))
            continue
        seen.add(q.key)
        survey.questions.append(q)


def parse_surveys(survey_rows: Sequence[Sequence[Any]], question_rows: Sequence[Sequence[Any]],
                  problems: list[Problem]) -> dict[str, Survey]:
    """Surveys by id, each with its valid questions; every problem is reported."""
    surveys = {s.id: s for _, s in parse_rows("surveys", SURVEY_COLUMNS, survey_rows, build_survey,
                                              problems)}
    questions = parse_rows("questions", QUESTION_COLUMNS, question_rows, build_question, problems)
    for survey in surveys.values():
        _attach(survey, [(n, q) for n, q in questions if q.survey_id == survey.id], problems)
    for number, q in questions:
        if q.survey_id not in surveys:
            problems.append(Problem("questions", number, "survey_id",
                                    f"surveys にない id です: {q.survey_id}"))
    return surveys
