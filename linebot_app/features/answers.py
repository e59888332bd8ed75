"""Checking one survey answer: normalise what people type, then accept it or say why not."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable

from domain.dates import parse_date, parse_time
from domain.surveys import Question

YES = {"はい", "yes", "y", "有", "あり", "する", "している", "○", "〇"}
NO = {"いいえ", "no", "n", "無", "なし", "しない", "していない", "×"}
EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
HINTS = {
    "text": "文字で入力してください", "long_text": "文字で入力してください",
    "number": "半角数字で入力してください(小数も可)", "integer": "半角数字で入力してください",
    "choice": "下の選択肢から選んでください", "multi_choice": "選択肢を「,」区切りで入力してください",
    "yes_no": "「はい」か「いいえ」で答えてください",
    "date": "日付で入力してください(例: 2026/4/1、令和8年4月1日)",
    "time": "時刻で入力してください(例: 14:30)",
    "phone": "電話番号を入力してください(例: 03-1234-5678)",
    "email": "メールアドレスを入力してください(例: name@example.jp)",
    "postal_code": "郵便番号7桁を入力してください(例: 650-0001)",
    "rating": "1〜5の数字で答えてください",
}


class Invalid(ValueError):
    """The answer does not fit; the message says why, in Japanese."""


MAX_DIGITS = 30  # longer numbers are typos (and int() refuses more than 4,300 digits)


def normalized(text: str) -> str:
    """NFKC, any script's decimal digits as ASCII, trimmed, dashes unified."""
    text = unicodedata.normalize("NFKC", text).strip()
    text = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)
    return re.sub(r"[‐‑‒–—―−ー－]", "-", text) if re.search(r"[0-9]", text) else text


def whole_number(text: str) -> int | None:
    """An ASCII whole number of sane length, else None (never raises)."""
    digits = text.lstrip("+-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_DIGITS:
        return None
    return int(text)


def _bounded(value: float, q: Question, unit: str = "") -> None:
    if q.min is not None and value < q.min:
        raise Invalid(f"{q.min:g}{unit}以上にしてください")
    if q.max is not None and value > q.max:
        raise Invalid(f"{q.max:g}{unit}以下にしてください")


def _text(text: str, q: Question) -> str:
    _bounded(len(text), q, "文字")
    return text


def _number(text: str, q: Question) -> str:
    plain = text.replace(",", "")
    if len(plain) > MAX_DIGITS or not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", plain):
        raise Invalid("数字として読めません(例: 12.5)")
    value = float(plain)
    _bounded(value, q)
    return f"{value:g}"


def _integer(text: str, q: Question) -> str:
    value = whole_number(text.replace(",", ""))
    if value is None:
        raise Invalid(f"{MAX_DIGITS}桁までの整数で入力してください")
    _bounded(value, q)
    return str(value)


def _rating(text: str, q: Question) -> str:
    low, high = q.min if q.min is not None else 1, q.max if q.max is not None else 5
    value = text.count("★") if text and set(text) <= {"★", "☆"} else None
    if value is None:
        value = whole_number(text)
    if value is None or not low <= value <= high:
        raise Invalid(f"{low:g}〜{high:g}の数字で答えてください")
    return str(value)


def _choice_index(text: str, q: Question) -> str:
    folded = {c.casefold(): c for c in q.choices}
    if text.casefold() in folded:
        return folded[text.casefold()]
    number = whole_number(text)
    if number is not None and 1 <= number <= len(q.choices):
        return q.choices[number - 1]
    raise Invalid(f"選択肢にありません: {text}")


def _choice(text: str, q: Question) -> str:
    return _choice_index(text, q)


def _multi(text: str, q: Question) -> str:
    picked = []
    for part in re.split(r"[,、，/・\s]+", text):
        if part:
            choice = _choice_index(part, q)
            picked += [choice] if choice not in picked else []
    if not picked:
        raise Invalid("1つ以上選んでください")
    _bounded(len(picked), q, "個")
    return ", ".join(c for c in q.choices if c in picked)


def _yes_no(text: str, q: Question) -> str:
    key = text.casefold()
    if key in YES:
        return "はい"
    if key in NO:
        return "いいえ"
    raise Invalid("「はい」か「いいえ」で答えてください")


def _date(text: str, q: Question) -> str:
    try:
        return parse_date(text).isoformat()
    except ValueError as err:
        raise Invalid("日付として読めません") from err


def _time(text: str, q: Question) -> str:
    try:
        return parse_time(text).strftime("%H:%M")
    except ValueError as err:
        raise Invalid("時刻として読めません") from err


def _phone(text: str, q: Question) -> str:
    digits = re.sub(r"[\s()-]", "", text)
    if not re.fullmatch(r"0\d{9,10}", digits):
        raise Invalid("0から始まる10〜11桁の番号にしてください")
    return text if re.fullmatch(r"0[\d-]+\d", text) else digits


def _email(text: str, q: Question) -> str:
    if not EMAIL.fullmatch(text):
        raise Invalid("メールアドレスの形になっていません")
    return text


def _postal(text: str, q: Question) -> str:
    digits = re.sub(r"[\s〒-]", "", text)
    if not re.fullmatch(r"\d{7}", digits):
        raise Invalid("7桁の数字にしてください")
    return f"{digits[:3]}-{digits[3:]}"


CHECKS: dict[str, Callable[[str, Question], str]] = {
    "text": _text, "long_text": _text, "number": _number, "integer": _integer,
    "choice": _choice, "multi_choice": _multi, "yes_no": _yes_no, "date": _date, "time": _time,
    "phone": _phone, "email": _email, "postal_code": _postal, "rating": _rating,
}


# Control characters a sheet cannot hold as typed (the .xlsx format turns them into _x001F_);
# tab, line feed and carriage return stay.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check(q: Question, text: str) -> str:
    """The value to store, or Invalid with the reason."""
    text = CONTROL.sub("", text)
    typed = text if q.type in ("text", "long_text") else normalized(text)  # text: as typed
    value = CHECKS[q.type](typed, q)
    if q.pattern and not re.fullmatch(q.pattern, value):
        raise Invalid("決められた形になっていません")
    if q.required and not value.strip():
        raise Invalid("この質問は必須です")
    return value


def shown(q: Question, value: str) -> str:
    """An answer as the person reads it back: dates in Japanese style (2026年4月1日), the rest
    as stored."""
    if value and q.type == "date":
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return value
        return f"{day.year}年{day.month}月{day.day}日"
    return value


def stored(q: Question, value: str) -> str | int | float:
    """What goes into the sheet: numbers as numbers (so sums and averages work), else text."""
    if value and q.type in ("integer", "rating"):
        return int(value)
    if value and q.type == "number":
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def hint(q: Question) -> str:
    """What is expected, said plainly."""
    return HINTS[q.type]
