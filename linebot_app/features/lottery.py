"""The lottery: at an event's lottery_at the scheduler draws once per role (domain.seats.Draw),
and each applicant is told by one push: 当選, or 落選 with their place in the waitlist."""

from __future__ import annotations

import logging
import random

from domain.schema import ROLES, Event, Registration, Workbook
from domain.seats import APPLICATIONS, DRAWING, Draw, applicants, phase, waitlist_position
from linebot_app.bot.context import Ctx, Services
from linebot_app.features.events import when
from linebot_app.line import messages as m
from linebot_app.line.delivery import Delivery

log = logging.getLogger(__name__)


def due(org: Workbook, regs: list[Registration], services: Services) -> list[Event]:
    """Lottery events with a draw to make, finish or announce."""
    now = services.now()
    return [e for e in org.events if phase(e, now) == DRAWING and any(
        applicants(regs, e.id, role) or _unannounced(services, e, role, regs) for role in ROLES)]


def _closed(event: Event) -> str:
    """The draw time as the registrations' created_at compare with it (applications before)."""
    return event.lottery_at.isoformat() if event.lottery_at else ""


def _unannounced(services: Services, event: Event, role: str, regs: list[Registration]
                 ) -> bool:
    """A draw made but not told (its scheduler died in between); asked only for a role that
    had applications (the draw is read once, then kept: see FirestoreSeats.drawn)."""
    closed = _closed(event)
    if not any(r.event_id == event.id and r.role == role and r.created_at < closed
               for r in regs):
        return False
    draw = services.store.seats.drawn(event.id, role)
    return draw is not None and not draw.notified_at


def run(services: Services, event: Event, rng: random.Random | None = None) -> list[Draw]:
    """Draw (once) for each role with applicants, and queue each result's push."""
    done = []
    for role in ROLES:
        closed = _closed(event) or services.stamp()
        draw = services.store.seats.draw(event.id, role, event.capacity_for(role), closed,
                                         services.stamp(), rng or services.rng)
        if draw is None:
            continue
        if not draw.notified_at:
            _announce(services, event, draw, closed)
            services.store.seats.notified(draw, services.stamp())
            log.info("lottery %s: %d drawn, %d seats", draw.id, len(draw.order), draw.winners)
        done.append(draw)
    return done


def _announce(services: Services, event: Event, draw: Draw, closed: str) -> None:
    """One push per applicant: everyone of the role registered before the draw time (all
    applications) still in (keyed by registration, so a second run sends nothing new)."""
    regs = services.store.registrations()
    head = f"【抽選結果】{event.title}\n{when(event)}\n\n"
    deliveries = []
    for reg in (r for r in regs if r.event_id == event.id and r.role == draw.role
                and r.created_at < closed):
        if reg.status == "confirmed":
            body = head + "当選しました。参加確定です。当日お待ちしています。"
        elif reg.status == "waitlisted":
            body = head + (f"残念ながら落選しました。キャンセル待ち({waitlist_position(regs, reg)}"
                           "番目)で受け付けています。繰り上がったらこのトークでお知らせします。")
        else:
            continue  # withdrawn meanwhile
        deliveries.append(Delivery(f"lottery:{reg.id}", event.id, "lottery", [reg.user_id],
                                   [m.text(body, [m.message_action("登録確認")])], "抽選結果"))
    services.deliveries.plan(deliveries)


def draw_now(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """抽選 <event> (admin): make a due draw now instead of at the scheduler's next round."""
    event = ctx.org.event(args[0]) if args else None
    if event is None:
        return [m.text("抽選するイベントのIDを指定してください(例: 抽選 E2)。" if not args
                       else f"イベント「{args[0]}」はありません。")]
    if event.allocation != "lottery" or event.lottery_at is None:
        return [m.text(f"「{event.title}」は抽選のイベントではありません(events の allocation)。")]
    stage = phase(event, ctx.now())
    if stage != DRAWING:
        if stage == APPLICATIONS:
            return [m.text(f"「{event.title}」の抽選は {event.lottery_at:%-m月%-d日 %H:%M} です。"
                           "その時刻になると自動で行います。")]
        return [m.text(f"「{event.title}」は抽選できません(中止または開催済み)。")]
    draws = run(ctx.services, event)
    if not draws:
        return [m.text(f"「{event.title}」には抽選の申し込みがありません。")]
    lines = [f"「{event.title}」の抽選結果:"]
    for draw in draws:
        waiting, at = len(draw.order) - draw.winners, _minute(draw.drawn_at)
        told = f"結果は {_minute(draw.notified_at)} にお知らせ済み" if draw.notified_at \
            else "結果を各申込者にお知らせします"
        lines.append(f"{'参加' if draw.role == 'participant' else '見学'}: 申込 {len(draw.order)} / "
                     f"当選 {draw.winners} / キャンセル待ち {waiting} ({at} 抽選、{told})")
    lines.append("抽選の順番は lottery シートに記録しています。")
    return [m.text("\n".join(lines))]


def _minute(stamp: str) -> str:
    return stamp[:16].replace("T", " ")
