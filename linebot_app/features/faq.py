"""Replies to what people ask in their own words: an FAQ row or a facility, 「もしかして」 with
close rows, or an honest 「見つかりませんでした」 with the categories."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from domain.schema import Facility, Faq
from linebot_app.bot.context import Ctx
from linebot_app.features import facilities
from linebot_app.line import messages as m
from linebot_app.understanding.intents import Understood, folded, understand

MAX_SUGGESTIONS = 3
GREETING_REPLY = ("こんにちは。市のよくある質問と、セミナーのご案内にお答えします。"
                  "知りたいことを、そのまま文で送ってください。「ヘルプ」で使い方を表示します。")
THANKS_REPLY = "どういたしまして。ほかにもご用があれば、お気軽にどうぞ。"
UNANSWERED = "unanswered"  # the bot's sheet of questions answered only with もしかして, or not
UNANSWERED_DAYS = 30  # 未回答 lists the questions asked in this many days
UNANSWERED_LISTED = 10
QUESTION_CHARS = 500  # a longer text is kept cut


def categories(faqs: list[Faq]) -> list[str]:
    """Distinct categories, in sheet order."""
    return list(dict.fromkeys(f.category for f in faqs if f.category))


def by_category(ctx: Ctx, text: str) -> list[m.Message] | None:
    """A category word (as the not-found reply offers them): its questions to choose from."""
    rows = [f for f in ctx.org.faq if f.category and folded(f.category) == folded(text)]
    if not rows:
        return None
    lines = [f"「{rows[0].category}」のよくある質問:", *[f"・{f.question}" for f in rows]]
    quick = [m.message_action(f.question) for f in rows[: m.MAX_QUICK_REPLY]]
    return [m.text("\n".join(lines), quick)]


def reply(ctx: Ctx, understood: Understood, text: str) -> list[m.Message]:
    """The answer, close rows to choose from, a greeting back, or 見つかりませんでした."""
    if understood.kind == "greeting":
        thanks = any(w in folded(text) for w in ("ありがと", "たすか", "助か", "thank", "さんくす", "thx"))
        return [m.text(THANKS_REPLY if thanks else GREETING_REPLY,
                       [m.message_action("イベント"), m.message_action("ヘルプ")])]
    if understood.kind in ("faq", "facility"):
        return [_answer(understood.hits[0].doc.row)]
    if ctx.typed:  # postback data that is no command is not a question to count
        remember_unanswered(ctx, text)
    if understood.kind == "maybe":
        return [_maybe(understood)]
    return [not_found(ctx)]


def remember_unanswered(ctx: Ctx, text: str) -> None:
    """Count a question the FAQ did not answer in the unanswered sheet: one row per question
    after folding (width, case, kana, spaces and punctuation), with no user id. The row keeps
    the text as first typed; it reaches the sheet through the outbox like any other row."""
    key = folded(text)
    if not key:
        return
    row_id = "q" + hashlib.sha256(key.encode()).hexdigest()[:16]
    store, now = ctx.services.store, ctx.stamp()
    known = next((r for r in store.rows(UNANSWERED) if r.get("id") == row_id), None)
    if known is None:
        store.add(UNANSWERED, {"id": row_id, "first_asked_at": now, "last_asked_at": now,
                               "text": text.strip()[:QUESTION_CHARS], "times": 1, "status": ""})
    else:
        store.update(UNANSWERED, row_id, {"last_asked_at": now, "times": times(known) + 1})


def times(row: dict[str, Any]) -> int:
    """A row's count, however the sheet gives it back (3, 3.0 or "3"); 1 when unreadable."""
    try:
        return max(1, int(float(str(row.get("times") or 1))))
    except (ValueError, OverflowError):  # 1e999 is infinite
        return 1


def recent_unanswered(rows: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """The questions last asked in the past UNANSWERED_DAYS days, most asked first."""
    since = (now - dt.timedelta(days=UNANSWERED_DAYS)).isoformat()
    recent = [r for r in rows if str(r.get("last_asked_at") or "") >= since]
    return sorted(recent, key=lambda r: (times(r), str(r.get("last_asked_at"))), reverse=True)


def unanswered(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """未回答 (admin): the most asked questions of the last 30 days that the FAQ did not answer,
    with their counts, so that organizers can add a keyword or a row; one the sheets now
    answer says so."""
    recent = recent_unanswered(ctx.services.store.rows(UNANSWERED), ctx.now())
    if not recent:
        return [m.text(f"直近{UNANSWERED_DAYS}日間に、答えられなかった質問はありません。")]
    lines = [f"直近{UNANSWERED_DAYS}日間に答えられなかった質問 ({len(recent)}件、多い順):"]
    for row in recent[:UNANSWERED_LISTED]:
        status = f" [{row['status']}]" if row.get("status") else ""
        now = understand(ctx.org, str(row.get("text", "")), ctx.now())
        answered = " → いまは答えます" if now.kind not in ("maybe", "none") else ""
        lines.append(f"・{row.get('text', '')} ({times(row)}回){status}{answered}")
    lines += ["", "FAQ シートにキーワードや行を足すと、次から答えます。"
                  "対応したら unanswered シートの status に「対応済み」などと書けます。"]
    return [m.text("\n".join(lines))]


def _answer(row: Faq | Facility) -> m.Message:
    if isinstance(row, Facility):
        return m.flex(f"{row.name}: {row.address} {row.hours}", facilities.bubble(row, None))
    return m.text(format_faq(row))


def _maybe(understood: Understood) -> m.Message:
    """「もしかして」: up to three close rows as quick replies that send their question (as
    postbacks: choices to tap, which a survey coming back waits behind)."""
    rows = [h.doc.row for h in understood.hits[:MAX_SUGGESTIONS]]
    labels = [r.question if isinstance(r, Faq) else r.name for r in rows]
    lines = ["もしかして、次のことでしょうか。", *[f"・{label}" for label in labels]]
    return m.text("\n".join(lines), [m.command(label, label) for label in labels])  # choices


def not_found(ctx: Ctx) -> m.Message:
    """見つかりませんでした, with the categories and help."""
    quick = [m.message_action(c) for c in categories(ctx.org.faq)[:11]]
    quick += [m.message_action("イベント"), m.message_action("ヘルプ")]
    return m.text("お探しの情報が見つかりませんでした。\n分野を選ぶか、別の言葉でお試しください。"
                  "\n使い方は「ヘルプ」で表示します。", quick)


def format_faq(faq: Faq) -> str:
    """Q. … A. … and the link."""
    lines = [f"Q. {faq.question}", f"A. {faq.answer}"]
    return "\n".join(lines + ([faq.url] if faq.url else []))
