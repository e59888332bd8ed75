"""Event listing, details and timetables."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from domain.dates import parse_date, word_key
from domain.schema import Event, Registration, Workbook
from linebot_app.bot.context import Ctx
from linebot_app.line import messages as m

WEEKDAYS = "月火水木金土日"
TODAY_WORDS = {"今日": 0, "きょう": 0, "本日": 0, "today": 0, "明日": 1, "あした": 1,
               "tomorrow": 1}


def when(event: Event) -> str:
    """2026年12月24日(木) 14:00〜16:00"""
    day = f"{event.date.year}年{event.date.month}月{event.date.day}日({WEEKDAYS[event.date.weekday()]})"
    if event.start is None:
        return day
    end = f"〜{event.end:%H:%M}" if event.end else "〜"
    return f"{day} {event.start:%H:%M}{end}"


def upcoming(org: Workbook, now: dt.datetime) -> list[Event]:
    """Events not cancelled that have not ended yet, soonest first."""
    return sorted((e for e in org.events if e.status != "cancelled" and e.ends_at >= now),
                  key=lambda e: e.starts_at)


def seats_left(event: Event, role: str, regs: list[Registration]) -> int | None:
    """Free seats for a role, or None when unlimited."""
    cap = event.capacity_for(role)
    if cap is None:
        return None
    taken = sum(1 for r in regs if r.event_id == event.id and r.role == role and r.seated)
    return max(cap - taken, 0)


def list_events(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """Upcoming events as a carousel with details, schedule and registration buttons."""
    events = upcoming(ctx.org, ctx.now())
    if not events:
        return [m.text("現在、受付中・開催予定のイベントはありません。\n"
                       "過去の予定は「予定 4/30」のように日付で確認できます。")]
    regs = ctx.services.store.registrations()
    bubbles = [_bubble(e, regs, ctx.now()) for e in events[: m.MAX_BUBBLES]]
    alt = "開催予定のイベント: " + " / ".join(e.title for e in events[: m.MAX_BUBBLES])
    return [m.flex(alt, {"type": "carousel", "contents": bubbles})]


def _seat_text(event: Event, regs: list[Registration], now: dt.datetime) -> str:
    if event.status == "closed":
        return "受付終了"
    if event.allocation == "lottery" and event.lottery_at and now < event.lottery_at:
        return f"抽選 ({event.lottery_at:%-m月%-d日 %H:%M}) / 参加 {_cap(event.capacity)}"
    left = seats_left(event, "participant", regs)
    if left is None:
        return "参加枠: 定員なし"
    return f"参加枠: 残り{left}席" if left else "参加枠: 満席 (キャンセル待ち受付中)"


def _line(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "text", "text": text or "-", "wrap": True, "size": "sm", **style}


def _bubble(event: Event, regs: list[Registration], now: dt.datetime) -> dict[str, Any]:
    place = event.venue or ("オンライン" if event.online_url else "会場未定")
    body = [
        _line(event.title, weight="bold", size="md"),
        _line(when(event), color="#555555"),
        _line(place, color="#555555"),
        _line(_seat_text(event, regs, now), color="#06C755"),
    ]
    buttons = [
        m.postback_action("参加登録", f"参加登録 {event.id}", "参加登録"),
        m.postback_action("詳細", f"詳細 {event.id}", "詳細"),
        m.postback_action("予定", f"予定 {event.id}", "予定"),
    ]
    return {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": body},
        "footer": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": [
            {"type": "button", "style": "primary" if i == 0 else "secondary", "height": "sm",
             "action": action} for i, action in enumerate(buttons)]},
    }


def marks(event: Event, now: dt.datetime, changed: list[str]) -> list[str]:
    """中止 / 受付終了 / 変更あり(日時・会場): what a registrant must notice about the event."""
    if event.status == "cancelled":
        return ["中止"]
    found = ["受付終了"] if event.status == "closed" or (
        event.deadline and event.deadline < now < event.starts_at) else []
    what = [label for label in changed if label != "開催"]
    return found + ([f"変更あり({'・'.join(what)})"] if what else [])


def event_marks(ctx: Ctx, event: Event) -> list[str]:
    """The marks of an event as this bot has seen it change."""
    return marks(event, ctx.now(), ctx.services.state.event_changes(event.id))


def details(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """Everything about one event, with registration and schedule shortcuts."""
    event = find_event(ctx, args)
    if event is None:
        return [_not_found(args)]
    flags = event_marks(ctx, event)
    lines = [" ".join(f"【{x}】" for x in flags)] if flags else []
    lines += [f"【{event.title}】", when(event)]
    lines += [f"会場: {event.venue}"] if event.venue else []
    lines += [f"オンライン: {event.online_url}"] if event.online_url else []
    lines += [f"定員: 参加{_cap(event.capacity)} / 見学{_cap(event.observer_capacity)}"]
    lines += [f"申込締切: {event.deadline:%Y年%-m月%-d日 %H:%M}"] if event.deadline else []
    lines += [f"抽選: {event.lottery_at:%Y年%-m月%-d日 %H:%M} (それまでの申し込みから抽選します)"
              ] if event.allocation == "lottery" and event.lottery_at else []
    lines += [f"繰り上げ: ご案内から{_length(event.confirm_within)}以内に「参加する」で確定"
              ] if event.confirm_within else []
    lines += [f"参加の再確認: 開始の{_length(event.reconfirm)}前 "
              f"({event.starts_at - event.reconfirm:%-m月%-d日 %H:%M}) から、参加確定の方に"
              "お尋ねします"] if event.reconfirm else []
    lines += ["", event.description] if event.description else []
    lines += ["", f"事前準備: {event.preparation}"] if event.preparation else []
    lines += ["", f"録画: {event.recording_url}"] if event.recording_url else []
    quick = [m.command("予定", f"予定 {event.id}")]
    if not {"中止", "受付終了"} & set(flags):  # offered only while one can register
        quick.insert(0, m.command("参加登録", f"参加登録 {event.id}"))
    return [m.text("\n".join(lines), quick)]


def reconfirming(event: Event, now: dt.datetime) -> bool:
    """From `reconfirm` before the start until the start: confirmed people are asked whether
    they come (reminders.reconfirmation); whoever takes a seat in this time has answered."""
    return event.reconfirm is not None and \
        event.starts_at - event.reconfirm <= now < event.starts_at


def _length(span: dt.timedelta) -> str:
    """3日 / 24時間 / 1時間30分 / 30分 (a day alone reads as 24時間)"""
    minutes = int(span.total_seconds() // 60)
    if minutes % 1440 == 0 and minutes > 1440:
        return f"{minutes // 1440}日"
    hours, rest = divmod(minutes, 60)
    return (f"{hours}時間" if hours else "") + (f"{rest}分" if rest else "")


def _cap(value: int | None) -> str:
    return "定員なし" if value is None else f"{value}名"


def schedule(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """The timetable of the event named by id or date, or of the next event."""
    events = events_for(ctx, args)
    if not events:
        return [_not_found(args)]
    return [m.text(_timetable(ctx.org, e)) for e in events[: m.MAX_MESSAGES]]


def _timetable(org: Workbook, event: Event) -> str:
    items = [i for i in org.schedule if word_key(i.event_id) == word_key(event.id)]
    lines = [f"📅 {event.title}", when(event), ""]
    for item in items:
        span = f"{item.start:%H:%M}〜{item.end:%H:%M}" if item.end else f"{item.start:%H:%M}〜"
        lines.append(f"{span} {item.title}")
        lines += [f"　{item.detail}"] if item.detail else []
    if not items:
        lines.append("タイムテーブルはまだ登録されていません。")
    return "\n".join(lines)


def events_for(ctx: Ctx, args: list[str]) -> list[Event]:
    """Events named by an id, a date or 今日/明日; without one, the next event."""
    org, now = ctx.org, ctx.now()
    if not args:
        nxt = upcoming(org, now)
        past = sorted(org.events, key=lambda e: e.starts_at)
        return nxt[:1] or past[-1:]
    event = org.event(args[0])
    if event is not None:
        return [event]
    day = _day_from(args[0], now.date())
    return _on_day(org, day, now.date()) if day else []


def find_event(ctx: Ctx, args: list[str]) -> Event | None:
    """One event from an id or date argument, or the next one."""
    found = events_for(ctx, args)
    return found[0] if found else None


def _day_from(word: str, today: dt.date) -> dt.date | tuple[int, int] | None:
    key = word_key(word)
    if key in TODAY_WORDS:
        return today + dt.timedelta(days=TODAY_WORDS[key])
    match = re.fullmatch(r"(\d{1,2})[/月.-](\d{1,2})日?", key)
    if match:
        return int(match[1]), int(match[2])
    try:
        return parse_date(word)
    except ValueError:
        return None


def _on_day(org: Workbook, day: dt.date | tuple[int, int], today: dt.date) -> list[Event]:
    if isinstance(day, dt.date):
        return [e for e in org.events if e.date == day]
    same = [e for e in org.events if (e.date.month, e.date.day) == day]
    later = sorted((e for e in same if e.date >= today), key=lambda e: e.date)
    earlier = sorted((e for e in same if e.date < today), key=lambda e: e.date, reverse=True)
    chosen = (later or earlier)[:1]
    return [e for e in same if chosen and e.date == chosen[0].date]


def _not_found(args: list[str]) -> m.Message:
    asked = " ".join(args)
    head = f"「{asked}」に当たるイベントが見つかりませんでした。" if asked else "イベントが見つかりませんでした。"
    return m.text(head + "\n「イベント」で開催予定の一覧を表示します。",
                  [m.message_action("イベント"), m.message_action("ヘルプ")])


def fact(ctx: Ctx, asked: str, args: list[str]) -> list[m.Message]:
    """会場 / 時間 / 持ち物 / 録画 / オンライン of the event named, or of the user's next one.
    The online URL and the recording go only to people registered for that event."""
    event = about(ctx, args)
    if event is None:
        return [_not_found(args)]
    registered = any(r.event_id == event.id and r.active
                     for r in ctx.services.store.registrations(user=ctx.user_id))
    head = f"【{event.title}】{when(event)}"
    quick = [m.command("詳細", f"詳細 {event.id}"), m.command("予定", f"予定 {event.id}")]
    return [m.text(f"{head}\n{FACTS[asked](event, registered)}", quick)]


def about(ctx: Ctx, args: list[str]) -> Event | None:
    """The event named; else the user's next registered one; else the next one."""
    if args:
        return find_event(ctx, args)
    now, mine = ctx.now(), {r.event_id for r in ctx.services.store.registrations(
        user=ctx.user_id) if r.active}
    booked = [e for e in upcoming(ctx.org, now) if e.id in mine]
    return booked[0] if booked else find_event(ctx, [])


def _only_registered(event: Event, what: str) -> str:
    return (f"{what}は、参加登録した方にお送りしています。"
            f"「参加登録 {event.id}」で登録できます。")


def _venue(event: Event, registered: bool) -> str:
    if event.venue:
        return f"会場: {event.venue}" + ("\n(オンラインでも参加できます)" if event.online_url else "")
    return "オンラインで開催します。" if event.online_url else "会場はまだ決まっていません。"


def _online(event: Event, registered: bool) -> str:
    if not event.online_url:
        return f"この回はオンライン配信がありません。会場: {event.venue or '未定'}"
    return f"オンライン参加: {event.online_url}" if registered else _only_registered(
        event, "オンライン参加の URL")


def _recording(event: Event, registered: bool) -> str:
    if not registered:
        return _only_registered(event, "録画の URL")
    return (f"録画: {event.recording_url}" if event.recording_url
            else "録画はまだ公開されていません。公開したら、登録した方にお知らせします。")


def _lottery(event: Event) -> str:
    if event.allocation != "lottery" or event.lottery_at is None:
        return "この回は抽選ではなく、先着順です。"
    return (f"抽選は {event.lottery_at:%-m月%-d日 %H:%M} です。それまでの申し込みから抽選し、"
            "結果は申し込んだ方にこのトークでお知らせします。ご自分の状況は「登録確認」で"
            "確かめられます。")


FACTS = {
    "venue": _venue,
    "time": lambda e, _: f"開始は {e.start:%H:%M} です。" if e.start else "開始時刻は未定です。",
    "preparation": lambda e, _: (f"事前準備: {e.preparation}" if e.preparation
                                 else "この回の事前準備は特にありません。"),
    "online": _online,
    "recording": _recording,
    "lottery": lambda e, _: _lottery(e),
}
