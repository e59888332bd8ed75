"""Event-change notices: when an organizer cancels an event, or moves its date, time or venue,
each active registrant is told once, with the new details."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from domain.schema import Event, Registration
from linebot_app.features.events import when
from linebot_app.line import messages as m
from linebot_app.line.delivery import Delivery

Remember = Callable[[], None]
# What a registrant is told about, with its Japanese label.
WATCHED = {"cancelled": "開催", "date": "日時", "start": "日時", "end": "日時", "venue": "会場"}


def fingerprint(event: Event) -> dict[str, Any]:
    """The parts of an event whose change its registrants must hear about."""
    return {"cancelled": event.status == "cancelled", "date": event.date.isoformat(),
            "start": _clock(event.start), "end": _clock(event.end), "venue": event.venue}


def _clock(value: dt.time | None) -> str:
    return value.strftime("%H:%M") if value else ""


def as_before(event: Event, before: dict[str, Any]) -> Event:
    """The event as it was when the fingerprint was taken."""
    def clock(text: str) -> dt.time | None:
        return dt.time.fromisoformat(text) if text else None

    return dataclasses.replace(
        event, date=dt.date.fromisoformat(before["date"]), start=clock(before["start"]),
        end=clock(before["end"]), venue=before["venue"],
        status="cancelled" if before["cancelled"] else "open")


def changed_labels(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Japanese names of what changed (日時, 会場, 開催), each once, in a stable order."""
    labels = [WATCHED[k] for k in WATCHED if before.get(k) != after.get(k)]
    return list(dict.fromkeys(labels))


def notice_text(event: Event, before: dict[str, Any]) -> str:
    """中止 or 変更, with the new details and what the registrant can do."""
    old = as_before(event, before)
    if event.status == "cancelled":
        return (f"【中止のお知らせ】{event.title}\n{when(old)}に予定していたこのイベントは"
                "中止になりました。\nご登録いただいた皆さまにお知らせしています。"
                "ご迷惑をおかけして申し訳ありません。")
    head = ("【開催のお知らせ】中止としていた次のイベントは開催します。" if old.status == "cancelled"
            else "【変更のお知らせ】次のイベントの内容が変わりました。")
    lines = [head, event.title]
    if when(old) != when(event):
        lines.append(f"日時: {when(old)} → {when(event)}")
    if old.venue != event.venue:
        lines.append(f"会場: {old.venue or '未定'} → {event.venue or '未定'}")
    lines += ["", f"最新の内容は「詳細 {event.id}」で確認できます。",
              f"ご都合が合わなくなった場合は「キャンセル {event.id}」でお知らせください。"]
    return "\n".join(lines)


def notice(event: Event, before: dict[str, Any], version: int,
           regs: list[Registration]) -> Delivery:
    """One push for every active registrant of the event; the version keys it."""
    people = [r.user_id for r in regs if r.event_id == event.id and r.active]
    cancelled = event.status == "cancelled"
    quick = [m.message_action("イベント")] if cancelled else [
        m.command("詳細", f"詳細 {event.id}"), m.message_action("登録確認")]
    return Delivery(f"change:{event.id}:v{version}", event.id,
                    "event-cancelled" if cancelled else "event-changed", people,
                    [m.text(notice_text(event, before), quick)],
                    "中止のお知らせ" if cancelled else "変更のお知らせ")


def worth_telling(event: Event, before: dict[str, Any], now: dt.datetime) -> bool:
    """Only changes to an event that had not ended, or that now lies ahead, are news."""
    return max(as_before(event, before).ends_at, event.ends_at) >= now


def changes(events: list[Event], regs: list[Registration], seen: Callable[[str], Any],
            remember: Callable[[str, dict[str, Any], int, list[str]], None], now: dt.datetime
            ) -> Iterator[tuple[Delivery | None, Remember]]:
    """For each changed event, its notice (None when nobody needs one) and the call that records
    the new version. Callers send first and record after, so a crash in between resends under
    the same key, which delivers nothing twice."""
    for event in events:
        after, known = fingerprint(event), seen(event.id)
        if known is None:  # first sight: this is the baseline
            remember(event.id, after, 0, [])
            continue
        before, version = known
        if before == after:
            continue
        labels = changed_labels(before, after)
        delivery = notice(event, before, version + 1, regs) if worth_telling(
            event, before, now) else None

        def record(event_id: str = event.id, fields: dict[str, Any] = after,
                   n: int = version + 1, what: list[str] = labels) -> None:
            remember(event_id, fields, n, what)

        yield delivery, record
