"""出席 / checkin: attendance, recorded once, from 30 minutes before the start to the end."""

from __future__ import annotations

import datetime as dt

from domain.dates import word_key
from linebot_app.bot.context import Ctx
from linebot_app.features.registration import status_words
from linebot_app.line import messages as m

EARLY = dt.timedelta(minutes=30)


def checkin(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """Record the attendance of a confirmed person at the event that is on now; others are
    told why not."""
    now = ctx.now()
    mine = [r for r in ctx.services.store.registrations(user=ctx.user_id) if r.active
            and (not args or word_key(r.event_id) == word_key(args[0]))
            and (e := ctx.org.event(r.event_id)) and e.starts_at - EARLY <= now <= e.ends_at]
    confirmed = [r for r in mine if r.status == "confirmed"]
    if not confirmed and mine:  # waiting, in a draw, or offered a seat not yet taken
        event = ctx.org.event(mine[0].event_id)
        regs = ctx.services.store.registrations(event=event.id)
        return [m.text(f"「{event.title}」の登録は{status_words(mine[0], regs)}のため、出席は"
                       "記録できません。出席は参加が確定した方だけが記録できます。"
                       "会場の受付でお声がけください。")]
    if not confirmed:
        return [m.text("出席を受け付けているイベントはありません。"
                       "開始30分前から終了までの間に、登録したイベントで送ってください。")]
    event = ctx.org.event(confirmed[0].event_id)
    first, at = ctx.services.state.check_in(event.id, ctx.user_id, ctx.stamp())
    if not first:
        return [m.text(f"「{event.title}」の出席はすでに記録済みです({at[11:16]})。")]
    ctx.services.store.add("attendance", {
        "id": f"A-{event.id}-{ctx.user_id}", "created_at": at, "event_id": event.id,
        "user_id": ctx.user_id, "display_name": ctx.services.line.display_name(ctx.user_id)})
    return [m.text(f"「{event.title}」の出席を記録しました({at[11:16]})。")]
