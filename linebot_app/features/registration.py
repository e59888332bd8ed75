"""Registration as participant or observer, with per-role capacity, waitlist and cancellation."""

from __future__ import annotations

import logging
from typing import Any

from ulid import ULID

from domain.dates import word_key
from domain.schema import ROLES, Event, Registration
from domain.seats import (
    APPLICATIONS,
    DRAWING,
    active_of,
    applicants,
    phase,
    waitlist_position,
)
from linebot_app.bot import flows
from linebot_app.bot.context import Ctx
from linebot_app.bot.flows import Conversation, State
from linebot_app.features.events import event_marks, events_for, reconfirming, upcoming, when
from linebot_app.features.offers import (
    QUEUE_AGAIN,
    again_button,
    deadline_words,
    end_offer,
    ended_offer,
    expired,
    held,
    offer_deadline,
    seats_to_give,
    tell_promoted,
)
from linebot_app.line import messages as m
from linebot_app.logs import digest, mask

log = logging.getLogger(__name__)

ROLE_WORDS = {"参加": "participant", "参加者": "participant", "participant": "participant",
              "見学": "observer", "見学者": "observer", "observer": "observer"}
LEVEL_WORDS = {"初心者": "beginner", "beginner": "beginner", "経験者": "experienced",
               "experienced": "experienced"}
ROLE_JA = {"participant": "参加", "observer": "見学"}
LEVEL_JA = {"beginner": "初心者", "experienced": "経験者", "": "-"}
YES = {"同意する", "同意", "はい", "agree", "yes"}
NO = {"同意しない", "いいえ", "disagree", "no"}


def parse_args(args: list[str]) -> tuple[str | None, str | None, str | None]:
    """(event id, role, level) from the words after the command, in any order."""
    event_id = role = level = None
    for word in args:
        key = word_key(word)
        if key in ROLE_WORDS:
            role = ROLE_WORDS[key]
        elif key in LEVEL_WORDS:
            level = LEVEL_WORDS[key]
        elif event_id is None:
            event_id = word
    return event_id, role, level


def _named(ctx: Ctx, word: str) -> Event | None:
    """The event with this id, or the one event on this date (1/4, 1月4日, 明日)."""
    found = events_for(ctx, [word])
    return found[0] if len(found) == 1 else None


def register(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """参加登録 [event] [参加|見学] [初心者|経験者]: asks for what is missing, then books a seat."""
    event_id, role, level = parse_args(args)
    event = _named(ctx, event_id) if event_id else _only_open(ctx)
    mine = active_of(ctx.services.store.registrations(user=ctx.user_id), ctx.user_id,
                     event.id) if event else None
    refusal = closed_reason(event, ctx) if event else ""
    if event is None and not _open_events(ctx):
        return [m.text("現在、受付中のイベントはありません。")]
    if refusal and (not mine or event.status == "cancelled"):  # said before any consent
        return [m.text(refusal, [m.message_action("イベント")])]
    if not ctx.services.state.has_consent(ctx.user_id):
        return ask_consent(ctx, args)
    if event is None:
        return [_ask_event(ctx, event_id)]
    if mine:
        return [_registered(ctx, mine, event)]
    if role is None:
        return [_ask(f"{event.title}\n参加の形を選んでください。", event.id, ROLE_JA, "")]
    if level is None:
        return [_ask("ICTツールの経験を選んでください。", event.id, LEVEL_JA, ROLE_JA[role])]
    return [book(ctx, event, role, level)]


def closed_reason(event: Event, ctx: Ctx) -> str:
    """Why registration is refused for this event now, or '' when it is open."""
    now = ctx.now()
    if event.status == "cancelled":
        return f"「{event.title}」は中止になりました。"
    if event.status == "closed":
        return f"「{event.title}」の受付は終了しました。"
    if event.starts_at <= now:
        return f"「{event.title}」はすでに開催済みです。"
    if event.deadline and event.deadline < now:
        return f"「{event.title}」の申込締切({event.deadline:%-m月%-d日 %H:%M})を過ぎています。"
    if _being_drawn(event, ctx):
        return (f"「{event.title}」の抽選の受付は {event.lottery_at:%-m月%-d日 %H:%M} で締め切り、"
                "ただいま抽選中です。結果の発表後(数分以内)にもう一度「参加登録」を送ると、"
                "空きがあれば先着で、なければキャンセル待ちで登録できます。")
    return ""


def _only_open(ctx: Ctx) -> Event | None:
    """The one event taking registrations, when there is just one (no need to ask which)."""
    found = _open_events(ctx)
    return found[0] if len(found) == 1 else None


def _open_events(ctx: Ctx) -> list[Event]:
    return [e for e in upcoming(ctx.org, ctx.now()) if not closed_reason(e, ctx)]


def _ask_event(ctx: Ctx, asked: str | None) -> m.Message:
    open_events = _open_events(ctx)
    if not open_events:
        return m.text("現在、受付中のイベントはありません。")
    head = f"「{asked}」というイベントは見つかりませんでした。\n" if asked else ""
    lines = [f"・{e.title} {when(e)}" for e in open_events]
    quick = [m.command(e.title, f"参加登録 {e.id}", f"「{e.title}」に申し込む") for e in open_events]
    return m.text(head + "登録するイベントを選んでください。\n" + "\n".join(lines), quick)


def _ask(question: str, event_id: str, words: dict[str, str], before: str) -> m.Message:
    prefix = f"参加登録 {event_id} {before}".strip()
    quick = [m.command(ja, f"{prefix} {ja}") for key, ja in words.items() if key]
    return m.text(question, quick)


def already_registered(reg: Registration, event: Event) -> m.Message:
    """The reply to a second registration: nothing is added."""
    return m.text(f"「{event.title}」にはすでに登録済みです ({status_words(reg)})。\n"
                  "登録内容は「登録確認」で見られます。", [m.message_action("登録確認")])


def _registered(ctx: Ctx, reg: Registration, event: Event) -> m.Message:
    """The reply when the person already has a registration: the first answer again when this
    same webhook event made it (LINE delivers an event again after a failure), else 'already'."""
    if reg.id != _reg_id(ctx):
        return already_registered(reg, event)
    position = waitlist_position(ctx.services.store.registrations(), reg)
    return m.text(_booked_text(event, reg, position), [m.message_action("登録確認")])


def _reg_id(ctx: Ctx) -> str:
    """A new registration's id: the webhook event's, so that a redelivery knows what it made."""
    return f"R{ctx.event_key}" if ctx.event_key else f"R{ULID()}"


CHANGES_ALLOWED = 10  # registrations and cancellations of one person for one event...
CHANGES_WINDOW_SECONDS = 600.0  # ...in this window; organizers are never limited
TOO_MANY_CHANGES = ("短い時間に登録とキャンセルが続いたため、このイベントの受け付けを少しの間"
                    "止めています。10分ほどしてから、もう一度お送りください。")


def may_change(ctx: Ctx, event_id: str, *, cancelling: bool = False) -> bool:
    """Count one registration change of this person for this event, across workers and
    instances; False past CHANGES_ALLOWED in CHANGES_WINDOW_SECONDS (no row is written then).
    A cancellation counts but is never refused: nobody is kept from giving up a seat."""
    if ctx.is_admin:
        return True
    kind = f"changes-{event_id}-{digest(ctx.user_id)}"
    if ctx.services.store.outbox.take_quota(kind, CHANGES_ALLOWED, CHANGES_WINDOW_SECONDS) \
            or cancelling:
        return True
    log.warning("registration changes of %s for %s paused: over %d in %.0f s",
                mask(ctx.user_id), event_id, CHANGES_ALLOWED, CHANGES_WINDOW_SECONDS)
    return False


def book(ctx: Ctx, event: Event, role: str, level: str) -> m.Message:
    """Take a seat or a place in the waitlist, and say 参加確定 or キャンセル待ち."""
    if not may_change(ctx, event.id):
        return m.text(TOO_MANY_CHANGES)
    name = ctx.services.line.display_name(ctx.user_id)
    row = _row(ctx, event, role, level, name)
    if reconfirming(event, ctx.now()):  # registering this close to the day is the answer
        row["reconfirmed"] = row["created_at"]
    if phase(event, ctx.now()) == APPLICATIONS:
        booked = ctx.services.store.seats.apply(row)
    else:
        booked = ctx.services.store.seats.book(row, event.capacity_for(role),
                                               offer_deadline(ctx.services, event))
    if not booked.new:
        return _registered(ctx, booked.reg, event)
    log.info("registration %s for %s: %s", mask(ctx.user_id), event.id, booked.reg.status)
    for other in booked.promoted:
        tell_promoted(ctx.services, other)
    return m.text(_booked_text(event, booked.reg, booked.position), [m.message_action("登録確認")])


def _being_drawn(event: Event, ctx: Ctx) -> bool:
    """Past the draw time while applications still wait for the scheduler to draw them (a
    minute at most): nobody may take a seat first come before the draw has given them out."""
    return phase(event, ctx.now()) == DRAWING and any(
        applicants(ctx.services.store.registrations(), event.id, role) for role in ROLES)


def _row(ctx: Ctx, event: Event, role: str, level: str, name: str) -> dict[str, Any]:
    stamp = ctx.stamp()
    return {"id": _reg_id(ctx), "created_at": stamp, "event_id": event.id,
            "user_id": ctx.user_id, "display_name": name, "role": role, "level": level,
            "status": "", "room": "", "updated_at": stamp}


def _booked_text(event: Event, reg: Registration, position: int) -> str:
    head = f"【{event.title}】\n{when(event)}\n{ROLE_JA[reg.role]} / {LEVEL_JA[reg.level]}\n\n"
    if reg.status == "confirmed":
        return head + "参加確定です。当日お待ちしています。"
    if reg.status == "applied":
        drawn = f"{event.lottery_at:%-m月%-d日 %H:%M}" if event.lottery_at else "抽選のあと"
        return head + f"抽選に申し込みました。結果は {drawn} にお知らせします。"
    return head + (f"定員に達しているため、キャンセル待ち({position}番目)で受け付けました。"
                   "\n繰り上がったらこのトークでお知らせします。")


def status_words(reg: Registration, regs: list[Registration] | None = None) -> str:
    """参加確定 / 抽選待ち / キャンセル待ち(N番目) / キャンセル済み"""
    if reg.status == "confirmed":
        return "参加確定"
    if reg.status == "applied":
        return "抽選待ち"
    if reg.status == "offered":
        return f"繰り上げ({deadline_words(reg.offer_until)}までに「参加する」で確定)"
    if reg.status == "cancelled":
        return "キャンセル済み"
    position = waitlist_position(regs, reg) if regs else 0
    return f"キャンセル待ち({position}番目)" if position else "キャンセル待ち"


def status(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """登録確認: the user's registrations and their statuses."""
    regs = ctx.services.store.registrations()
    mine = sorted((r for r in regs if r.user_id == ctx.user_id and r.active),
                  key=lambda r: r.created_at)
    if not mine:
        return [m.text("現在、登録はありません。「イベント」から登録できます。",
                       [m.message_action("イベント")])]
    lines = ["現在の登録:"]
    for reg in mine:
        event = ctx.org.event(reg.event_id)
        title = f"{event.title} {when(event)}" if event else reg.event_id
        flags = "".join(f" 【{x}】" for x in event_marks(ctx, event)) if event else ""
        said = ("イベント中止" if event and event.status == "cancelled"
                else status_words(reg, regs))
        lines.append(f"・{title}{flags}\n　{ROLE_JA.get(reg.role, reg.role)} / "
                     f"{LEVEL_JA.get(reg.level, reg.level)} / {said}")
    called_off = {e.id for e in ctx.org.events if e.status == "cancelled"}
    quick = [_cancel_button(ctx, r) for r in mine if r.event_id not in called_off]
    return [m.text("\n".join(lines), quick)]


def _cancel_button(ctx: Ctx, reg: Registration) -> dict[str, Any]:
    """「<title>をキャンセル」, which cancels that registration."""
    event = ctx.org.event(reg.event_id)
    title = event.title if event else reg.event_id
    return m.command(m.titled(title, "をキャンセル"), f"キャンセル {reg.event_id}",
                     f"「{title}」をキャンセル")


def confirm_cancel(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """A cancellation said in a sentence is never done at once: the registration it names
    (else each of the person's) is offered as a button that cancels it."""
    mine = [r for r in ctx.services.store.registrations(user=ctx.user_id) if r.active]
    if not mine:
        return [m.text("キャンセルできる登録はありません。")]
    named = [r for r in mine if args and word_key(r.event_id) == word_key(args[0])]
    return [m.text("キャンセルする登録を選んでください。",
                   [_cancel_button(ctx, r) for r in named or mine])]


def cancel(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """キャンセル <event>: cancels, and promotes the first waitlisted person of that role."""
    mine = [r for r in ctx.services.store.registrations(user=ctx.user_id) if r.active]
    target = next((r for r in mine if args and word_key(r.event_id) == word_key(args[0])), None)
    if target is None:  # none to cancel, or which one: asked as for a sentence
        return confirm_cancel(ctx, args)
    event = ctx.org.event(target.event_id)
    may_change(ctx, target.event_id, cancelling=True)
    done = ctx.services.store.seats.cancel(
        target.event_id, ctx.user_id, ctx.stamp(), seats_to_give(ctx.services, event, target.role),
        offer_until=offer_deadline(ctx.services, event))
    if done.promoted:
        tell_promoted(ctx.services, done.promoted)
    title = event.title if event else target.event_id
    if target.status == "applied":
        return [m.text(f"「{title}」の抽選の申し込みを取り消しました。")]
    return [m.text(f"「{title}」の登録をキャンセルしました。")]


def accept(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """参加する [event]: take an offered seat before its deadline; to a reconfirmation, say
    the person comes; otherwise it is a registration."""
    offered = held(ctx, args, "offered")
    if offered is not None:
        event = ctx.org.event(offered.event_id)
        title = event.title if event else offered.event_id
        if expired(ctx.services, offered):
            end_offer(ctx.services, offered, "expired", tell=False)  # this reply tells them
            return [m.text(f"「{title}」の繰り上げは期限({deadline_words(offered.offer_until)})を"
                           f"過ぎたため、次の方に順番が移りました。{QUEUE_AGAIN}",
                           [again_button(offered.event_id)])]
        if ctx.services.store.seats.accept(offered.event_id, ctx.user_id, ctx.stamp()):
            if event and reconfirming(event, ctx.now()):
                ctx.services.store.update("registrations", offered.id, {"reconfirmed": ctx.stamp()})
            return [m.text(f"「{title}」の参加が確定しました。当日お待ちしています。",
                           [m.message_action("登録確認")])]
    coming = held(ctx, args, "confirmed")
    event = ctx.org.event(coming.event_id) if coming else None
    if coming is not None and event is not None and event.reconfirm is not None:
        if not coming.reconfirmed:
            ctx.services.store.update("registrations", coming.id, {"reconfirmed": ctx.stamp()})
        return [m.text(f"ありがとうございます。「{event.title}」({when(event)})にご参加と"
                       "承りました。当日お待ちしています。")]
    ended = ended_offer(ctx, args)
    if ended is not None:
        old = ctx.org.event(ended.event_id)
        return [m.text(f"「{old.title if old else ended.event_id}」の繰り上げのご案内は、"
                       f"{'辞退されたため' if ended.status == 'declined' else '期限を過ぎたため'}"
                       f"次の方にお譲りしました。{QUEUE_AGAIN}",
                       [again_button(ended.event_id)])]
    return register(ctx, args)


def ask_consent(ctx: Ctx, then: list[str]) -> list[m.Message]:
    """Show the privacy notice and wait for 同意する; then make the registration asked for."""
    notice = ctx.org.settings.get("privacy_notice") or "登録情報はセミナーの運営にのみ使います。"
    flows.save(ctx, Conversation("consent", State.ASKING, then=list(then)))
    quick = [m.message_action("同意する"), m.message_action("同意しない")]
    return [m.text(f"はじめに、個人情報の取り扱いについてご確認ください。\n\n{notice}\n\n"
                   "同意いただける場合は「同意する」を押してください。", quick)]


def repeat_consent(ctx: Ctx, conv: Conversation) -> list[m.Message]:
    """再開 while the privacy notice waits: show it again."""
    return ask_consent(ctx, conv.then)


def consent_answer(ctx: Ctx, text: str, conv: Conversation) -> list[m.Message]:
    """The answer to the privacy notice: 同意する records it and goes on with the registration."""
    key = word_key(text)
    if key in YES:
        ctx.services.state.give_consent(ctx.user_id)
        flows.end(ctx)
        return register(ctx, conv.then)
    if key in NO:
        flows.end(ctx)
        return [m.text("登録を中止しました。同意いただけない場合は登録できません。")]
    return [m.text("「同意する」か「同意しない」を選んでください。",
                   [m.message_action("同意する"), m.message_action("同意しない")])]


