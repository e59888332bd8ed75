"""Replies to what people ask in their own words: an FAQ row or a facility, 「もしかして」 with
close rows, or an honest 「見つかりませんでした」 with the categories."""

from __future__ import annotations

from domain.schema import Facility, Faq
from linebot_app.bot.context import Ctx
from linebot_app.features import facilities
from linebot_app.line import messages as m
from linebot_app.understanding.intents import Understood, folded

MAX_SUGGESTIONS = 3
GREETING_REPLY = ("こんにちは。市のよくある質問と、セミナーのご案内にお答えします。"
                  "知りたいことを、そのまま文で送ってください。「ヘルプ」で使い方を表示します。")
THANKS_REPLY = "どういたしまして。ほかにもご用があれば、お気軽にどうぞ。"


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
        thanks = any(w in folded(text) for w in ("ありがと", "たすか", "助か", "thank"))
        return [m.text(THANKS_REPLY if thanks else GREETING_REPLY,
                       [m.message_action("イベント"), m.message_action("ヘルプ")])]
    if understood.kind in ("faq", "facility"):
        return [_answer(understood.hits[0].doc.row)]
    if understood.kind == "maybe":
        return [_maybe(understood)]
    return [not_found(ctx)]


def _answer(row: Faq | Facility) -> m.Message:
    if isinstance(row, Facility):
        return m.flex(f"{row.name}: {row.address} {row.hours}", facilities.bubble(row, None))
    return m.text(format_faq(row))


def _maybe(understood: Understood) -> m.Message:
    """「もしかして」: up to three close rows as quick replies that send their question."""
    rows = [h.doc.row for h in understood.hits[:MAX_SUGGESTIONS]]
    labels = [r.question if isinstance(r, Faq) else r.name for r in rows]
    lines = ["もしかして、次のことでしょうか。", *[f"・{label}" for label in labels]]
    return m.text("\n".join(lines), [m.message_action(label) for label in labels])


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
