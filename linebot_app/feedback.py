"""The feedback conversation: a 1–5 rating, then 雑感, 使えそうな業務 and 導入の課題."""

from __future__ import annotations

import re
from typing import Any

from ulid import ULID

from linebot_app import messages as m
from linebot_app.context import Ctx
from linebot_app.events import when
from sheets.dates import fold
from sheets.schema import Event

QUESTIONS = (
    ("rating", "今回の満足度を1〜5で教えてください(5がいちばん良い)。"),
    ("impression", "雑感: 参加してみての感想を自由にお書きください。"),
    ("use_cases", "使えそうな業務: 今日の内容が使えそうな業務はありますか?"),
    ("challenges", "導入の課題: 職場で導入するとしたら、どんな課題がありそうですか?"),
)
SKIP = {"スキップ", "skip", "とばす", "なし"}
QUIT = {"やめる", "quit", "中止", "stop"}


def start(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """感想 [event]: pick the event, then ask the first question."""
    event = ctx.org.event(args[0]) if args else _default_event(ctx)
    if event is None:
        return [_ask_event(ctx, args[0] if args else None)]
    conv = {"flow": "feedback", "event_id": event.id, "step": 0, "answers": {}}
    ctx.services.state.save_conversation(ctx.user_id, conv)
    intro = f"「{event.title}」の感想をお聞かせください。各質問は「スキップ」で飛ばせます。"
    return [m.text(intro), _question(0)]


def _default_event(ctx: Ctx) -> Event | None:
    """The event the user registered for most recently that has already started."""
    now = ctx.now()
    mine = {r.event_id for r in ctx.services.store.registrations()
            if r.user_id == ctx.user_id and r.active}
    started = sorted((e for e in ctx.org.events if e.id in mine and e.starts_at <= now),
                     key=lambda e: e.starts_at)
    return started[-1] if started else None


def _ask_event(ctx: Ctx, asked: str | None) -> m.Message:
    now = ctx.now()
    recent = sorted((e for e in ctx.org.events if e.status != "cancelled"
                     and e.starts_at <= now), key=lambda e: e.starts_at, reverse=True)
    if not recent:
        return m.text("感想を受け付けているイベントはまだありません。")
    head = f"「{asked}」というイベントは見つかりませんでした。\n" if asked else ""
    quick = [m.message_action(f"感想 {e.id}", e.title) for e in recent]
    lines = [f"{e.id}: {e.title} {when(e)}" for e in recent[: m.MAX_QUICK_REPLY]]
    return m.text(head + "どのイベントの感想ですか?\n" + "\n".join(lines), quick)


def _question(step: int) -> m.Message:
    key, body = QUESTIONS[step]
    quick = [m.message_action(str(n)) for n in range(1, 6)] if key == "rating" else []
    quick += [m.message_action("スキップ"), m.message_action("やめる")]
    return m.text(f"({step + 1}/{len(QUESTIONS)}) {body}", quick)


def parse_rating(text: str) -> int | None:
    """1–5 from '4', '４', '★★★★' or '4点'; None when it is not a rating."""
    key = fold(text)
    if key and set(key) <= {"★", "☆"}:
        stars = key.count("★")
        return stars if 1 <= stars <= 5 else None
    match = re.fullmatch(r"([1-5])(点|です)?", key)
    return int(match[1]) if match else None


def answer(ctx: Ctx, text: str, conv: dict[str, Any]) -> list[m.Message]:
    """Take one answer, then ask the next question or save the row."""
    state = ctx.services.state
    key = fold(text)
    if key in QUIT:
        state.end_conversation(ctx.user_id)
        return [m.text("感想の入力をやめました。また「感想」でいつでも送れます。")]
    step = int(conv.get("step", 0))
    name = QUESTIONS[step][0]
    if key in SKIP:
        value: Any = ""
    elif name == "rating":
        value = parse_rating(text)
        if value is None:
            return [m.text("1〜5の数字で答えてください。"), _question(step)]
    else:
        value = text
    conv["answers"][name] = value
    conv["step"] = step + 1
    if conv["step"] < len(QUESTIONS):
        state.save_conversation(ctx.user_id, conv)
        return [_question(conv["step"])]
    return _finish(ctx, conv)


def _finish(ctx: Ctx, conv: dict[str, Any]) -> list[m.Message]:
    answers = conv["answers"]
    row = {"id": f"F{ULID()}", "created_at": ctx.stamp(), "event_id": conv["event_id"],
           "user_id": ctx.user_id, **{k: answers.get(k, "") for k, _ in QUESTIONS}}
    ctx.services.store.add("feedback", row)
    ctx.services.state.end_conversation(ctx.user_id)
    return [m.text("ご回答ありがとうございました。今後の企画に活かします。")]
