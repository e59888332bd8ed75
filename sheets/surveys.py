"""Survey definitions typed into the surveys and questions sheets, and their checks."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sheets.dates import fold, parse_date
from sheets.schema import (
    FALSE_WORDS,
    Problem,
    RowError,
    cell_text,
    read_cell,
    required_text,
    rows_as_dicts,
)

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
    text = fold(cell_text(value))
    if not text:
        return default
    return text in TRUE_WORDS or text not in FALSE_WORDS and default


def _number(value: Any) -> float | None:
    text = fold(cell_text(value))
    return float(text) if text else None


def _skip_if(value: Any) -> tuple[str, str] | None:
    text = cell_text(value)
    if not text:
        return None
    key, sep, answer = text.partition("=")
    if not sep or not key.strip():
        raise ValueError("「キー=答え」の形にしてください (例: online_care=いいえ)")
    return key.strip(), answer.strip()


def build_question(row: dict[str, Any]) -> Question:
    """Parse one questions row."""
    kind = fold(cell_text(row.get("type"))) or "text"
    if kind not in TYPES:
        raise RowError("type", f"不明な種類です: {kind!r} ({', '.join(TYPES)})")
    choices = tuple(c.strip() for c in re.split(r"[,、，]", cell_text(row.get("choices")))
                    if c.strip())
    if kind in ("choice", "multi_choice") and not choices:
        raise RowError("choices", "選択肢を「,」区切りで書いてください")
    pattern = cell_text(row.get("pattern"))
    try:
        re.compile(pattern)
    except re.error as err:
        raise RowError("pattern", f"正規表現として読めません: {err}") from err
    question = Question(
        survey_id=required_text(row, "survey_id"), order=read_cell(row, "order", _number) or 0.0,
        key=required_text(row, "key"), text=required_text(row, "text"), type=kind, choices=choices,
        required=_flag(row.get("required"), False), min=read_cell(row, "min", _number),
        max=read_cell(row, "max", _number), pattern=pattern, help=cell_text(row.get("help")),
        skip_if=read_cell(row, "skip_if", _skip_if))
    if question.min is not None and question.max is not None and question.min > question.max:
        raise RowError("min", f"min ({question.min:g}) が max ({question.max:g}) より大きいです")
    return question


def build_survey(row: dict[str, Any]) -> Survey | None:
    """Parse one surveys row; a disabled one gives None."""
    if not _flag(row.get("enabled"), True):
        return None
    audience = cell_text(row.get("audience")) or "anyone"
    if not re.fullmatch(r"anyone|admins|registrants:\S+", audience):
        raise RowError("audience", "anyone / registrants:<イベントID> / admins のいずれかにしてください")
    optional_date = lambda v: parse_date(v) if cell_text(v) else None  # noqa: E731
    return Survey(
        id=required_text(row, "id"), title=required_text(row, "title"),
        intro=cell_text(row.get("intro")), outro=cell_text(row.get("outro")), audience=audience,
        opens=read_cell(row, "opens", optional_date), closes=read_cell(row, "closes", optional_date),
        editable=_flag(row.get("editable"), False))


def _rows(sheet: str, rows: Sequence[Sequence[Any]], build: Any, problems: list[Problem]
          ) -> list[tuple[int, Any]]:
    parsed = []
    for number, row in rows_as_dicts(sheet, rows, problems):
        try:
            item = build(row)
        except RowError as err:
            problems.append(Problem(sheet, number, err.column, err.message))
            continue
        if item is not None:
            parsed.append((number, item))
    return parsed


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
    surveys = {s.id: s for _, s in _rows("surveys", survey_rows, build_survey, problems)}
    questions = _rows("questions", question_rows, build_question, problems)
    for survey in surveys.values():
        _attach(survey, [(n, q) for n, q in questions if q.survey_id == survey.id], problems)
    for number, q in questions:
        if q.survey_id not in surveys:
            problems.append(Problem("questions", number, "survey_id",
                                    f"surveys にない id です: {q.survey_id}"))
    return surveys
