"""Freed seats: the first person waiting is confirmed, or offered the seat until a deadline
(confirm_within); an offer declined or past its deadline moves on; seats freed by hand go to the
people waiting; everyone is told by push."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from domain.dates import word_key
from domain.schema import ROLES, Event, Registration, Workbook
from domain.seats import active_of, confirmed_count, has_room, queue
from linebot_app.bot.context import Ctx, Services
from linebot_app.features.events import reconfirming, when
from linebot_app.line import messages as m
from linebot_app.line.delivery import Delivery

log = logging.getLogger(__name__)


def tell_promoted(services: Services, reg: Registration) -> None:
    """Push to the person a freed seat went to: confirmed, or offered until a deadline."""
    event = services.store.workbook().event(reg.event_id)
    title = f"「{event.title}」({when(event)})" if event else reg.event_id
    if reg.status == "offered":
        body = (f"キャンセルが出たため、{title}に繰り上げで参加できます。\n"
                f"{deadline_words(reg.offer_until)} までに「参加する」を押してください。"
                "期限を過ぎると次の方に順番が移ります。")
        quick = [m.command("参加する", f"参加する {reg.event_id}"),
                 m.command("辞退する", f"辞退する {reg.event_id}")]
        services.deliveries.deliver(Delivery(
            key=f"offer:{reg.id}", event_id=reg.event_id, kind="offer", recipients=[reg.user_id],
            messages=[m.text(body, quick)], summary="繰り上げのご案内(期限つき)"))
        return
    body = f"キャンセルが出たため、{title}の参加が確定しました(キャンセル待ちから繰り上げ)。"
    quick = None
    if event and reconfirming(event, services.now()):  # the day is near: ask at once
        body += "\n参加できますか。「参加する」か「キャンセルする」でお知らせください。"
        quick = [m.command("参加する", f"参加する {reg.event_id}"),
                 m.command("キャンセルする", f"キャンセル {reg.event_id}")]
    services.deliveries.deliver(Delivery(
        key=f"promote:{reg.id}", event_id=reg.event_id, kind="promotion",
        recipients=[reg.user_id], messages=[m.text(body, quick)],
        summary="キャンセル待ちからの繰り上げ"))


def seats_to_give(services: Services, event: Event | None, role: str) -> int | None:
    """The capacity a freed seat is given under: the role's until the event starts; after
    that 0, so that nobody is promoted (or offered a seat) for an event under way."""
    if event is None:
        return None
    return event.capacity_for(role) if services.now() < event.starts_at else 0


def offer_deadline(services: Services, event: Event | None) -> str:
    """Until when a seat freed now is held for the person offered it: confirm_within from
    now, rounded up to the minute it is shown with, but never past the event's start ('' when
    the event promotes at once)."""
    if event is None or event.confirm_within is None:
        return ""
    until = services.clock().astimezone(services.tz) + event.confirm_within
    if until.second or until.microsecond:
        until = until.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = event.starts_at.replace(tzinfo=services.tz)
    return min(until, start).isoformat(timespec="minutes")


def deadline_words(stamp: str) -> str:
    """An offer's deadline as people read it: 12月3日 10:00."""
    try:
        return f"{dt.datetime.fromisoformat(stamp):%-m月%-d日 %H:%M}"
    except ValueError:
        return stamp


def expired(services: Services, reg: Registration) -> bool:
    try:
        return dt.datetime.fromisoformat(reg.offer_until) <= services.clock()
    except ValueError:
        return False  # an organizer's odd edit: the offer waits for an answer


def held(ctx: Ctx, args: list[str], status: str) -> Registration | None:
    """The user's registration with this status: of the event named, or the only one."""
    found = [r for r in ctx.services.store.registrations(user=ctx.user_id) if r.status == status]
    if args:
        found = [r for r in found if word_key(r.event_id) == word_key(args[0])]
    return found[0] if len(found) == 1 else None


QUEUE_AGAIN = "\nもう一度キャンセル待ちに並ぶときは、下の「もう一度申し込む」を押してください。"


def again_button(event_id: str) -> dict[str, Any]:
    """もう一度申し込む: a new registration for the event (the person sees no id)."""
    return m.command("もう一度申し込む", f"参加登録 {event_id}")


def ended_offer(ctx: Ctx, args: list[str]) -> Registration | None:
    """The user's last registration of the event named (or of any event) when it is an offer
    that ended and nothing newer is active: a late 参加する answers that offer."""
    regs = ctx.services.store.registrations()
    mine = sorted((r for r in regs if r.user_id == ctx.user_id and (
        not args or word_key(r.event_id) == word_key(args[0]))), key=lambda r: r.updated_at)
    last = mine[-1] if mine else None
    if last is None or last.status not in ("expired", "declined") or \
            active_of(regs, ctx.user_id, last.event_id):
        return None
    return last


def decline(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """辞退する [event]: refuse an offered seat; it goes to the next person waiting."""
    offered = held(ctx, args, "offered")
    if offered is None:
        return [m.text("辞退できる繰り上げのご案内はありません。登録の取り消しは「キャンセル」です。",
                       [m.message_action("登録確認")])]
    event = ctx.org.event(offered.event_id)
    if end_offer(ctx.services, offered, "declined") is None:
        return [m.text("このご案内はすでに終わっています。「登録確認」でご確認ください。")]
    return [m.text(f"「{event.title if event else offered.event_id}」の繰り上げを辞退しました。"
                   f"ご連絡ありがとうございました。{QUEUE_AGAIN}", [again_button(offered.event_id)])]


def end_offer(services: Services, reg: Registration, ending: str, *, tell: bool = True
              ) -> Registration | None:
    """An offer declined or expired: the seat goes to the next person waiting (offered in
    turn); an expiry is pushed to the person unless they are being answered (tell=False).
    Returns the registration ended, or None when it was no longer offered."""
    event = services.store.workbook().event(reg.event_id)
    done = services.store.seats.cancel(
        reg.event_id, reg.user_id, services.stamp(), seats_to_give(services, event, reg.role),
        ending=ending, offer_until=offer_deadline(services, event), only="offered")
    if done.reg is None:
        return None
    log.info("offer %s for %s: %s", reg.id, reg.event_id, ending)
    if ending == "expired" and tell:
        title = f"「{event.title}」" if event else reg.event_id
        services.deliveries.deliver(Delivery(
            key=f"expired:{reg.id}", event_id=reg.event_id, kind="offer-expired",
            recipients=[reg.user_id], messages=[m.text(
                f"{title}の繰り上げは、期限({deadline_words(reg.offer_until)})までにお返事が"
                f"なかったため、次の方にお譲りしました。{QUEUE_AGAIN}",
                [again_button(reg.event_id)])], summary="繰り上げの期限切れ"))
    if done.promoted:
        tell_promoted(services, done.promoted)
    return done.reg


def expire_offers(services: Services, regs: list[Registration]) -> int:
    """The scheduler's part: offers past their deadline end, and the seat moves on."""
    ended = 0
    for reg in regs:
        if reg.status == "offered" and expired(services, reg) and \
                end_offer(services, reg, "expired") is not None:
            ended += 1
    return ended


def fill_free_seats(services: Services, org: Workbook, regs: list[Registration]) -> int:
    """The scheduler's part: a seat freed without a cancellation through the bot (an organizer
    set a row to cancelled, or raised the capacity) goes to the first person waiting, offered
    or confirmed as a cancellation would give it, and they are told."""
    now, filled = services.now(), 0
    for event in org.events:
        if event.status == "cancelled" or event.starts_at <= now:
            continue
        for role in ROLES:
            capacity = event.capacity_for(role)
            if not queue(regs, event.id, role) or \
                    not has_room(confirmed_count(regs, event.id, role), capacity):
                continue
            for reg in services.store.seats.fill(event.id, role, capacity, services.stamp(),
                                                 offer_deadline(services, event)):
                tell_promoted(services, reg)
                filled += 1
    return filled


def tell_organizer_edit(services: Services, before: Registration, after: Registration) -> None:
    """An organizer changed someone's status in the sheet: cancelled their registration, or
    confirmed them while they waited; they are told once (by push)."""
    event = services.store.workbook().event(after.event_id)
    if event is None or event.starts_at <= services.now():
        return
    title = f"「{event.title}」({when(event)})"
    if after.status == "cancelled" and before.active:
        body = (f"{title}の登録は、運営者により取り消されました。"
                "ご不明な点は運営者にお問い合わせください。")
    elif after.status == "confirmed" and before.status in ("waitlisted", "applied", "offered"):
        body = f"{title}の参加が確定しました(運営者による変更)。当日お待ちしています。"
    else:
        return
    services.deliveries.deliver(Delivery(
        key=f"organizer:{after.id}:{after.status}", event_id=after.event_id,
        kind="organizer-edit", recipients=[after.user_id],
        messages=[m.text(body, [m.message_action("登録確認")])], summary="運営者による変更"))
