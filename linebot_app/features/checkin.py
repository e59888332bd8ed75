"""出席 / checkin: attendance, recorded once, from 30 minutes before the start to the end."""

from __future__ import annotations

import datetime as dt

from domain.dates import word_key
from linebot_app.bot.context import Ctx
from linebot_app.line import messages as m

EARLY = dt.timedelta(minutes=30)


def checkin(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """Record the user's attendance at the event that is on now."""
    now = ctx.now()
    mine = [r for r in ctx.services.store.registrations()
            if r.user_id == ctx.user_id and r.active
            and (not args or word_key(r.event_id) == word_key(args[0]))]
    events = [e for e in (ctx.org.event(r.event_id) for r in mine)
              if e and e.starts_at - EARLY <= now <= e.ends_at]
    if not events:
        return [m.text("出席を受け付けているイベントはありません。"
                       "開始30分前から終了までの間に、登録したイベントで送ってください。")]
    event = events[0]
    first, at = ctx.services.state.check_in(event.id, ctx.user_id, ctx.stamp())
    if not first:
        return [m.text(f"「{event.title}」の出席はすでに記録済みです({at[11:16]})。")]
    ctx.services.store.add("attendance", {
        "id": f"A-{event.id}-{ctx.user_id}", "created_at": at, "event_id": event.id,
        "user_id": ctx.user_id, "display_name": ctx.services.line.display_name(ctx.user_id)})
    return [m.text(f"「{event.title}」の出席を記録しました({at[11:16]})。")]
