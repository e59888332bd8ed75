"""Random Unicode into command parsing, date parsing and FAQ matching: nothing crashes."""

from __future__ import annotations

import datetime as dt
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.dates import parse_date, parse_time_range
from domain.schema import Faq
from domain.surveys import Question
from linebot_app.bot.commands import lookup, split
from linebot_app.features.answers import Invalid, check
from linebot_app.features.registration import parse_args
from linebot_app.line.messages import fit, text, utf16_len
from linebot_app.understanding import retrieval
from storage.sheets.sample import FAQ

FAQS = [Faq(tuple(k.split(",")), q, a, c, u) for k, q, a, c, u in FAQ]


@given(st.text())
def test_command_parsing_gives_words_and_known_values(typed: str) -> None:
    words = split(typed)
    assert all(w and not any(c.isspace() for c in w) for w in words)
    assert "".join(words) == "".join(unicodedata.normalize("NFKC", typed).split())
    found = lookup(typed)
    assert found is None or found is lookup(found.names[0])
    event_id, role, level = parse_args(words[1:])
    assert role in (None, "participant", "observer") and level in (None, "beginner", "experienced")
    assert event_id is None or event_id in words[1:]
    try:
        rating = check(Question("s", 1, "k", "?", "rating"), typed)
    except Invalid as err:
        assert str(err)  # a refusal always says why
    else:
        assert rating in {"1", "2", "3", "4", "5"}


@given(st.one_of(st.text(), st.integers(), st.floats(allow_nan=True), st.none()))
def test_date_parsing_raises_only_value_error(value: object) -> None:
    try:
        assert isinstance(parse_date(value), dt.date)
    except ValueError:
        pass
    try:
        parse_time_range(value)
    except ValueError:
        pass


INDEX = retrieval.Index([retrieval.faq_doc(f) for f in FAQS])


@given(st.text())
def test_faq_matching_never_crashes_and_gives_at_most_three(query: str) -> None:
    hits = INDEX.search(query)
    assert len(hits) <= 3 and all(0.0 <= h.coverage <= 1.0 for h in hits)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=50)
@given(st.lists(st.text(min_size=1, max_size=9000), min_size=1, max_size=8))
def test_fit_always_respects_line_limits(bodies: list[str]) -> None:
    out = fit([text(b) for b in bodies])
    assert 1 <= len(out) <= 5
    assert all(utf16_len(m["text"]) <= 5000 for m in out)
