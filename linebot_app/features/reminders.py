"""Scheduled messages: reminders before the event, a feedback request and the recording after."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from domain.dates import Unreadable, parse_duration
from domain.schema import Event, Registration, Workbook
from domain.seats import waitlist_position
from linebot_app.features.events import reconfirming, when
from linebot_app.line import messages as m
from linebot_app.line.delivery import Delivery

DEFAULT_OFFSETS = "7d, 1d, 2h"
FOLLOW_UP = dt.timedelta(days=30)  # after-event messages go out within this time of the end


def parse_offsets(text: str) -> list[dt.timedelta]:
    """'7d, 1d, 2h' -> [7 days, 1 day, 2 hours], longest first; unreadable parts are skipped
    (each part as domain.dates.parse_duration reads the events' lengths)."""
    found = set()
    for part in re.split(r"[,、\s]+", text or DEFAULT_OFFSETS):
        try:
            found.add(parse_duration(part))
        except Unreadable:
            continue
    return sorted(found, reverse=True)


def label(offset: dt.timedelta) -> str:
    """A stable name for an offset: 7d, 1d, 2h, 30m."""
    minutes = int(offset.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def _active(regs: list[Registration], event: Event, status: str) -> list[Registration]:
    return [r for r in regs if r.event_id == event.id and r.status == status]


def reminder_text(event: Event, offset: dt.timedelta | None) -> str:
    """The reminder: when, where, what to prepare; a week ahead it also invites cancellation."""
    lines = [f"【リマインド】{event.title}", when(event)]
    lines += [f"会場: {event.venue}"] if event.venue else []
    lines += [f"オンライン: {event.online_url}"] if event.online_url else []
    lines += ["", f"事前準備: {event.preparation}"] if event.preparation else []
    if offset is not None and offset >= dt.timedelta(days=7):
        lines += ["", "ご都合が悪くなった場合は「キャンセル " + event.id + "」でお知らせください。"
                  "キャンセル待ちの方に席をお譲りできます。"]
    return "\n".join(lines)


def reminders(event: Event, regs: list[Registration], offset: dt.timedelta | None,
              key: str) -> Iterator[Delivery]:
    """The reminder for confirmed people and a status notice for each waitlisted person."""
    confirmed = [r.user_id for r in _active(regs, event, "confirmed")]
    yield Delivery(f"{key}:confirmed", event.id, f"reminder-{key.rsplit(':', 1)[-1]}",
                   confirmed, [m.text(reminder_text(event, offset))], "リマインド")
    for reg in _active(regs, event, "waitlisted"):
        text = (f"【{event.title}】{when(event)}\n現在キャンセル待ち"
                f"({waitlist_position(regs, reg)}番目)です。繰り上がったらお知らせします。")
        yield Delivery(f"{key}:waitlist:{reg.id}", event.id, "waitlist-status",
                       [reg.user_id], [m.text(text)], "キャンセル待ちの状況")


def _due_reminder(event: Event, offsets: list[dt.timedelta], now: dt.datetime
                  ) -> dt.timedelta | None:
    """The shortest offset whose time has come (a missed longer one is not sent late)."""
    if event.status == "cancelled" or now >= event.starts_at:
        return None
    due = [o for o in offsets if now >= event.starts_at - o]
    return min(due) if due else None


def _after(event: Event, regs: list[Registration]) -> Iterator[Delivery]:
    people = [r.user_id for r in regs if r.event_id == event.id and r.status == "confirmed"]
    ask = m.text(f"「{event.title}」へのご参加ありがとうございました。感想をお聞かせください。",
                 [m.command("感想を送る", f"感想 {event.id}")])
    yield Delivery(f"after:{event.id}:feedback", event.id, "feedback-request", people, [ask],
                   "感想のお願い")
    if event.recording_url:
        rec = m.text(f"「{event.title}」の録画を公開しました。\n{event.recording_url}")
        yield Delivery(f"after:{event.id}:recording", event.id, "recording", people, [rec],
                       "録画のお知らせ")


def reconfirmation(event: Event, regs: list[Registration], now: dt.datetime
                   ) -> Iterator[Delivery]:
    """From `reconfirm` before the start: 参加できますか to each confirmed person (once)."""
    if event.status == "cancelled" or not reconfirming(event, now):
        return
    people = [r.user_id for r in _active(regs, event, "confirmed") if not r.reconfirmed]
    ask = m.text(f"【参加確認】{event.title}\n{when(event)}\n\n参加できますか。"
                 "「参加する」か「キャンセルする」でお知らせください。",
                 [m.command("参加する", f"参加する {event.id}"),
                  m.command("キャンセルする", f"キャンセル {event.id}")])
    yield Delivery(f"reconfirm:{event.id}", event.id, "reconfirm", people, [ask], "参加確認")


def due(org: Workbook, regs: list[Registration], now: dt.datetime) -> Iterator[Delivery]:
    """Every delivery whose time has come; keys make a second run send nothing new."""
    offsets = parse_offsets(org.settings.get("reminders", DEFAULT_OFFSETS))
    for event in org.events:
        offset = _due_reminder(event, offsets, now)
        if offset is not None:
            yield from reminders(event, regs, offset, f"remind:{event.id}:{label(offset)}")
        yield from reconfirmation(event, regs, now)
        if event.status != "cancelled" and event.ends_at <= now <= event.ends_at + FOLLOW_UP:
            yield from _after(event, regs)
