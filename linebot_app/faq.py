"""FAQ lookup: kana-, width- and case-blind matching of keywords and question text."""

from __future__ import annotations

import functools
import re
import unicodedata

import jaconv

from linebot_app import messages as m
from linebot_app.context import Ctx
from sheets.schema import Faq

MAX_ANSWERS = 3
PUNCTUATION = re.compile(r"[\s\W_]+")


def normalize(text: str) -> str:
    """Fold width, case and katakana/hiragana, and drop spaces and punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return PUNCTUATION.sub("", jaconv.kata2hira(folded))


def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


@functools.lru_cache(maxsize=8)
def _index(faqs: tuple[Faq, ...]) -> tuple[tuple[Faq, tuple[str, ...], str, str], ...]:
    return tuple((f, tuple(normalize(k) for k in f.keywords if normalize(k)),
                  normalize(f.question), normalize(f.category)) for f in faqs)


def _score(query: str, keywords: tuple[str, ...], question: str) -> float:
    score = 0.0
    for word in keywords:
        if word in query or (len(query) >= 2 and query in word):
            score += 2.0 + len(word) / 10
    if len(query) >= 2 and query in question:
        score += 2.0
    grams = _bigrams(query)
    if grams:
        score += 2.0 * len(grams & _bigrams(question)) / len(grams)
    return score


def search(faqs: list[Faq], query: str, limit: int = MAX_ANSWERS) -> list[Faq]:
    """The best FAQ entries for a query, best first; an empty list when nothing fits."""
    q = normalize(query)
    if not q:
        return []
    index = _index(tuple(faqs))
    by_category = [f for f, _, _, cat in index if cat and cat == q]
    if by_category:
        return by_category[:limit]
    scored = [(_score(q, words, question), n) for n, (_, words, question, _) in enumerate(index)]
    ranked = sorted((s for s in scored if s[0] >= 1.2), key=lambda s: (-s[0], s[1]))
    return [index[n][0] for _, n in ranked[:limit]]


def categories(faqs: list[Faq]) -> list[str]:
    """Distinct categories, in sheet order."""
    return list(dict.fromkeys(f.category for f in faqs if f.category))


def answer(ctx: Ctx, query: str) -> list[m.Message]:
    """Reply with up to three answers, or say nothing matched and offer categories and help."""
    found = search(ctx.org.faq, query)
    if found:
        return [m.text(_format(f)) for f in found]
    quick = [m.message_action(c) for c in categories(ctx.org.faq)[:11]]
    quick += [m.message_action("イベント"), m.message_action("ヘルプ")]
    return [m.text("お探しの情報が見つかりませんでした。\n分野を選ぶか、別の言葉でお試しください。"
                   "\n使い方は「ヘルプ」で表示します。", quick)]


def _format(faq: Faq) -> str:
    lines = [f"Q. {faq.question}", f"A. {faq.answer}"]
    return "\n".join(lines + ([faq.url] if faq.url else []))
