"""感想: the post-event feedback, run as the survey named "feedback" (same sheet, same columns)."""

from __future__ import annotations

from domain.dates import word_key
from domain.schema import Event
from linebot_app.bot.context import Ctx
from linebot_app.features import surveys
from linebot_app.features.events import when
from linebot_app.line import messages as m


def start(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """感想 [event]: pick the event, then ask the feedback survey's questions."""
    event = ctx.org.event(args[0]) if args else _default_event(ctx)
    if event is None:
        return [_ask_event(ctx, args[0] if args else None)]
    refused = refusal(ctx, event)
    if refused:
        return [m.text(refused, [m.message_action("登録確認"), m.message_action("イベント")])]
    intro = f"「{event.title}」の感想をお聞かせください。任意の質問は「スキップ」で飛ばせます。"
    return surveys.begin(ctx, surveys.feedback_survey(ctx), {"event_id": event.id}, intro,
                         flow="feedback")


def open_to_anyone(ctx: Ctx) -> bool:
    """settings.feedback_audience = anyone lets people without a registration answer."""
    return word_key(ctx.org.settings.get("feedback_audience", "")) == "anyone"


def refusal(ctx: Ctx, event: Event) -> str:
    """Why this user cannot give feedback on the event now, or '' when they can."""
    if event.status == "cancelled":
        return f"「{event.title}」は中止になったため、感想は受け付けていません。"
    if event.starts_at > ctx.now():
        return f"「{event.title}」の感想は、開催後 ({when(event)}) に受け付けます。"
    if open_to_anyone(ctx) or surveys.in_audience(ctx, f"registrants:{event.id}"):
        return ""
    return (f"「{event.title}」の感想は、参加登録した方にお願いしています。"
            "「登録確認」で登録を確かめられます。")


def _default_event(ctx: Ctx) -> Event | None:
    """The event the user registered for most recently that has already started."""
    now = ctx.now()
    mine = {r.event_id for r in ctx.services.store.registrations(user=ctx.user_id) if r.active}
    started = sorted((e for e in ctx.org.events if e.id in mine and e.starts_at <= now),
                     key=lambda e: e.starts_at)
    return started[-1] if started else None


def _ask_event(ctx: Ctx, asked: str | None) -> m.Message:
    recent = sorted((e for e in ctx.org.events if not refusal(ctx, e)),
                    key=lambda e: e.starts_at, reverse=True)
    head = f"「{asked}」というイベントは見つかりませんでした。\n" if asked else ""
    if not recent:
        return m.text(head + "いま感想をお送りいただけるイベントはありません。感想は、参加登録した"
                      "イベントの開催後に受け付けます。", [m.message_action("登録確認")])
    quick = [m.command(e.title, f"感想 {e.id}", f"「{e.title}」の感想") for e in recent]
    lines = [f"{e.id}: {e.title} {when(e)}" for e in recent[: m.MAX_QUICK_REPLY]]
    return m.text(head + "どのイベントの感想ですか?\n" + "\n".join(lines), quick)
