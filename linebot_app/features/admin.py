"""Organizer commands: stats, attendee lists, reminders, announcements, breakout rooms."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from statistics import mean

from ulid import ULID

from domain.schema import Event, Registration
from linebot_app.bot.context import Ctx
from linebot_app.features import reminders, rooms
from linebot_app.features.answers import normalized, whole_number
from linebot_app.features.events import events_for, upcoming, when
from linebot_app.features.registration import LEVEL_JA, ROLE_JA, status_words
from linebot_app.line import messages as m
from linebot_app.line.delivery import Delivery, Job

MAX_ROOM = 100  # people in one room, at most
USAGE = "イベントIDか日付を指定してください(例: {cmd} E2、{cmd} 12/29)。"


def _event(ctx: Ctx, args: list[str], cmd: str) -> Event | m.Message:
    """The event an admin command names by its id or its date (12/29, 12月29日)."""
    found = events_for(ctx, args[:1]) if args else []
    if len(found) != 1:
        return m.text(USAGE.format(cmd=cmd) if not args else f"イベント「{args[0]}」はありません。")
    return found[0]


def _regs(ctx: Ctx, event: Event) -> list[Registration]:
    return ctx.services.store.registrations(event=event.id)


def _stats_lines(ctx: Ctx, event: Event) -> list[str]:
    regs = _regs(ctx, event)
    count = Counter((r.role, r.status) for r in regs)
    levels = Counter(r.level for r in regs if r.status == "confirmed" and r.role == "participant")
    ratings = [n for f in ctx.services.store.rows("feedback") if f.get("event_id") == event.id
               and (n := whole_number(str(f.get("rating", "")))) is not None]
    feedback = [f for f in ctx.services.store.rows("feedback") if f.get("event_id") == event.id]
    attended = {a["user_id"] for a in ctx.services.store.rows("attendance")
                if a.get("event_id") == event.id}
    lines = [f"【{event.id} {event.title}】{when(event)}"]
    for role, ja in ROLE_JA.items():
        applied = f"抽選待ち {count[(role, 'applied')]} / " if event.allocation == "lottery" else ""
        offered = (f" / 繰り上げ回答待ち {count[(role, 'offered')]} / 辞退 "
                   f"{count[(role, 'declined')]} / 期限切れ {count[(role, 'expired')]}"
                   if event.confirm_within is not None else "")
        lines.append(f"{ja}: {applied}確定 {count[(role, 'confirmed')]} / キャンセル待ち "
                     f"{count[(role, 'waitlisted')]} / キャンセル {count[(role, 'cancelled')]}"
                     f"{offered}")
    if event.reconfirm is not None:
        coming = [r for r in regs if r.status == "confirmed"]
        answered = sum(1 for r in coming if r.reconfirmed)
        lines.append(f"参加確認: 参加すると回答 {answered} / 未回答 {len(coming) - answered}")
    lines.append(f"参加者のレベル: 初心者 {levels['beginner']} / 経験者 {levels['experienced']}")
    lines.append(f"出席: {len(attended)}")
    average = f" (平均 {mean(ratings):.1f})" if ratings else ""
    lines.append(f"感想: {len(feedback)}件{average}")
    return lines


def stats(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """集計 [event]: counts by role, level and status, attendance, feedback and its average."""
    if args:
        event = _event(ctx, args, "集計")
        return [event] if isinstance(event, dict) else [m.text("\n".join(_stats_lines(ctx, event)))]
    events = upcoming(ctx.org, ctx.now()) or sorted(ctx.org.events, key=lambda e: e.starts_at)[-3:]
    blocks = ["\n".join(_stats_lines(ctx, e)) for e in events]
    return [m.text("\n\n".join(blocks) or "イベントがありません。")]


def attendees(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """参加者 <event>: everyone registered, split over messages within LINE's limits."""
    event = _event(ctx, args, "参加者")
    if isinstance(event, dict):
        return [event]
    regs = sorted((r for r in _regs(ctx, event) if r.active), key=lambda r: (r.created_at, r.id))
    attended = {a["user_id"] for a in ctx.services.store.rows("attendance")
                if a.get("event_id") == event.id}
    lines = [f"{n}. {r.display_name or r.user_id[-6:]} {ROLE_JA.get(r.role, r.role)}/"
             f"{LEVEL_JA.get(r.level, r.level)} {status_words(r, regs)}"
             f"{' ' + r.room if r.room else ''}{' 参加確認済み' if r.reconfirmed else ''}"
             f"{' 出席' if r.user_id in attended else ''}"
             for n, r in enumerate(regs, start=1)]
    head = f"【{event.title}】登録 {len(regs)}名"
    return [m.text("\n".join([head, *lines]) if lines else head + "\n登録はまだありません。")]


def remind(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """リマインド <event>: the reminder, now, to confirmed registrants."""
    event = _event(ctx, args, "リマインド")
    if isinstance(event, dict):
        return [event]
    key = f"remind-now:{event.id}:{ULID()}"
    planned = list(reminders.reminders(event, _regs(ctx, event), None, key))
    return [m.text(_queued(ctx, "リマインド", key, planned))]


def _queued(ctx: Ctx, label: str, key: str, deliveries: list[Delivery]) -> str:
    """Queue a delivery for the worker and say at once how many people it goes to."""
    total = ctx.services.deliveries.plan(deliveries, Job(key, ctx.user_id, label))
    if not total:
        return f"{label}の送り先がいません。"
    return f"{label}を{total}名に送ります。送り終えたらお知らせします。"


def announce(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """お知らせ <event> <text>: the text to everyone registered for the event."""
    event = _event(ctx, args, "お知らせ")
    if isinstance(event, dict):
        return [event]
    if len(args) < 2:
        return [m.text("お知らせの本文を続けて書いてください(例: お知らせ E2 会場が変わりました)。")]
    people = [r.user_id for r in _regs(ctx, event) if r.active]
    parts = re.split(r"\s+", ctx.text.strip(), maxsplit=2)  # command, event, the text as typed
    text = parts[2] if len(parts) == 3 else " ".join(args[1:])
    body = f"【お知らせ】{event.title}\n{text}"
    key = f"announce:{event.id}:{ULID()}"
    return [m.text(_queued(ctx, "お知らせ", key, [Delivery(
        key, event.id, "announcement", people, [m.text(body)], " ".join(text.split())[:100])]))]


def assign_rooms(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """部屋割り <event> [size]: rooms by level, written to the sheet and told to each person."""
    event = _event(ctx, args, "部屋割り")
    if isinstance(event, dict):
        return [event]
    size = _room_size(ctx, args[1:])
    if size is None:
        return [m.text("使い方: 部屋割り <イベント> [1部屋の人数]。人数は 1 から "
                       f"{MAX_ROOM} までの数字で書いてください (例: 部屋割り {event.id} 4)。")]
    regs = _regs(ctx, event)
    plan = rooms.assign(regs, event.id, size)
    for reg in regs:
        if reg.id in plan and reg.room != plan[reg.id]:
            ctx.services.store.update("registrations", reg.id,
                                      {"room": plan[reg.id], "updated_at": ctx.stamp()})
    told = _tell_rooms(ctx, event, regs, plan)
    summary = Counter(plan.values())
    lines = [f"{name}: {summary[name]}名" for name in sorted(summary)]
    return [m.text(f"【{event.title}】部屋割り(1部屋{size}名まで)\n" + "\n".join(lines)
                   + f"\n{told}" if lines else "参加確定の人がいません。")]


def _room_size(ctx: Ctx, args: list[str]) -> int | None:
    """The size typed (None when it is not a number from 1 to MAX_ROOM), else the sheet's
    room_size setting, else 5."""
    if args:
        size = whole_number(normalized(args[0]))
        return size if size is not None and 0 < size <= MAX_ROOM else None
    size = whole_number(normalized(ctx.org.settings.get("room_size", "")))
    return size if size is not None and 0 < size <= MAX_ROOM else 5


def _tell_rooms(ctx: Ctx, event: Event, regs: list[Registration], plan: dict[str, str]) -> str:
    """Queue for each room's people their room name and who is in it (once per room and
    members); what to tell the admin about it."""
    by_id = {r.id: r for r in regs}
    told = []
    by_room: dict[str, list[Registration]] = {}
    for reg_id, room in plan.items():
        by_room.setdefault(room, []).append(by_id[reg_id])
    for room, members_regs in by_room.items():
        people = [r.user_id for r in members_regs]
        members = hashlib.sha1(",".join(sorted(people)).encode()).hexdigest()[:16]
        key = f"rooms:{event.id}:{room}:{members}"  # the same room, same people: told once
        names = "、".join(r.display_name.strip() or f"…{r.user_id[-4:]}" for r in members_regs)
        text = (f"【{event.title}】あなたの部屋は「{room}」です。\n"
                f"メンバー({len(members_regs)}名): {names}")
        told.append(Delivery(key, event.id, "room", people, [m.text(text)], f"部屋割り {room}"))
    return _queued(ctx, "部屋のお知らせ", f"rooms:{event.id}:{ULID()}", told)
