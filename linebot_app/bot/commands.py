"""The one place that registers commands and conversation flows, and routes text to them."""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from domain.dates import word_key
from linebot_app.bot import flows
from linebot_app.bot.context import Ctx
from linebot_app.bot.flows import Conversation, Flow, State, Step
from linebot_app.features import (
    admin,
    checkin,
    events,
    facilities,
    faq,
    feedback,
    lottery,
    offers,
    registration,
    surveys,
)
from linebot_app.line import messages as m
from linebot_app.understanding import intents

NO_USER_ID = ("この操作には、ボットを友だち追加して 1 対 1 のトークで話しかけてください。"
              "(このトークからは、あなたを見分けられないため)")

Handler = Callable[[Ctx, list[str]], list[m.Message]]
KEPT_ASIDE = "回答中のアンケートは保存しました。こちらが終わると続きに戻ります。"
CONTINUE = m.message_action(surveys.CONTINUE)  # 「アンケートの続き」, a name of 再開


@dataclass(frozen=True)
class Command:
    """A command: its words (Japanese first, then the English alias) and its handler."""

    names: tuple[str, ...]
    handler: Handler
    usage: str
    admin: bool = False
    public: bool = False  # answers people LINE gives no userId (public information only)


def show_help(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """ヘルプ: every command a user can send."""
    lines = ["使い方 (英語の別名も使えます)", ""]
    lines += [f"・{c.usage}" for c in COMMANDS if not c.admin]
    if ctx.is_admin:
        lines += ["", "運営者向け:"] + [f"・{c.usage}" for c in COMMANDS if c.admin]
    lines += ["", "それ以外の言葉は、よくある質問から探してお答えします。"]
    quick = [m.message_action(w) for w in ("イベント", "予定", "参加登録", "登録確認", "感想")]
    return [m.text("\n".join(lines), quick)]


def resume(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """再開: the open survey's question again; else the most recent conversation waiting aside
    comes back (a pending privacy notice then waits beneath it)."""
    conv = flows.load(ctx)
    flow = FLOWS.get(conv.flow) if conv else None
    if conv is not None and flow is not None and flow.keeps_on_command:
        return flow.repeat(ctx, conv)
    back = flows.bring_back(ctx, lambda kept: kept.flow in FLOWS, instead_of=conv)
    if back is not None:
        return FLOWS[back.flow].repeat(ctx, back)
    if conv is not None and flow is not None:
        return flow.repeat(ctx, conv)
    return [m.text("再開できるアンケートはありません。「アンケート」で一覧を表示します。")]


def reload_sheets(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """再読込: read the spreadsheet again now."""
    org = ctx.services.store.reload()
    note = f"\n問題のある行が{len(org.problems)}件あります(check で確認)。" if org.problems else ""
    return [m.text(f"スプレッドシートを読み込み直しました。イベント{len(org.events)}件、"
                   f"FAQ{len(org.faq)}件。{note}")]


COMMANDS: tuple[Command, ...] = (
    Command(("ヘルプ", "使い方", "help"), show_help, "ヘルプ / help: この説明", public=True),
    Command(("イベント", "イベント一覧", "events"), events.list_events,
            "イベント / events: 開催予定のイベント", public=True),
    Command(("詳細", "details"), events.details, "詳細 / details [ID]: イベントの詳細", public=True),
    Command(("予定", "スケジュール", "schedule"), events.schedule,
            "予定 / schedule [ID|4/30|今日|明日]: タイムテーブル", public=True),
    Command(("参加登録", "登録", "申込", "register"), registration.register,
            "参加登録 / register [ID] [参加|見学] [初心者|経験者]"),
    Command(("キャンセル", "cancel"), registration.cancel, "キャンセル / cancel [ID]: 登録の取り消し"),
    Command(("参加する", "accept"), registration.accept,
            "参加する / accept [ID]: 繰り上げ・参加確認への返事"),
    Command(("辞退する", "decline"), offers.decline, "辞退する / decline [ID]: 繰り上げの辞退"),
    Command(("登録確認", "status"), registration.status, "登録確認 / status: 自分の登録と状態"),
    Command(("感想", "フィードバック", "feedback"), feedback.start,
            "感想 / feedback [ID]: 満足度と感想を送る"),
    Command(("出席", "チェックイン", "checkin"), checkin.checkin, "出席 / checkin: 当日の出席登録"),
    Command(("アンケート", "survey"), surveys.start, "アンケート / survey [ID]: アンケートに答える"),
    Command(("再開", surveys.CONTINUE, "resume"), resume, "再開 / resume: 中断したアンケートの続き"),
    Command(("回答状況", "responses"), surveys.responses, "回答状況 / responses ID: 回答数と完了率",
            admin=True),
    Command(("催促", "nudge"), surveys.nudge, "催促 / nudge ID: 未回答の人にお願いを送る",
            admin=True),
    Command(("集計", "stats"), admin.stats, "集計 / stats [ID]: 登録・出席・感想の集計", admin=True),
    Command(("参加者", "attendees"), admin.attendees, "参加者 / attendees ID: 登録者の一覧",
            admin=True),
    Command(("リマインド", "remind"), admin.remind, "リマインド / remind ID: 今すぐリマインド",
            admin=True),
    Command(("お知らせ", "announce"), admin.announce, "お知らせ / announce ID 本文: 登録者に送る",
            admin=True),
    Command(("部屋割り", "rooms"), admin.assign_rooms, "部屋割り / rooms ID [人数]: 部屋を分ける",
            admin=True),
    Command(("抽選", "lottery"), lottery.draw_now, "抽選 / lottery ID: 抽選の時刻なら今すぐ抽選",
            admin=True),
    Command(("未回答", "unanswered"), faq.unanswered,
            "未回答 / unanswered: 答えられなかった質問 (直近30日、多い順)", admin=True),
    Command(("再読込", "reload"), reload_sheets, "再読込 / reload: シートを読み直す", admin=True),
)
# Conversations: each flow's states and the handler for a line typed in each, and fallbacks that
# mean the same in every state. In every flow a command word runs that command: a survey is kept
# and offers 「アンケートの続き」, or waits aside when the command opens another conversation.
# 再開 repeats the open survey's question, or brings back the most recent one waiting aside.
SURVEY_STATES: dict[State, Step] = {
    State.ASK: surveys.take, State.FIX: surveys.take, State.REVIEW: surveys.review,
    State.EDIT: surveys.confirm_edit, State.QUIT: surveys.confirm_quit,
}
SURVEY_FALLBACKS: dict[str, Step] = {surveys.QUIT: surveys.ask_quit, surveys.BACK: surveys.back}
FLOWS: dict[str, Flow] = {
    "consent": Flow({State.ASKING: registration.consent_answer}, {}, registration.repeat_consent,
                    keeps_on_command=False),
    "survey": Flow(SURVEY_STATES, SURVEY_FALLBACKS, surveys.repeat, keeps_on_command=True),
    "feedback": Flow(SURVEY_STATES, SURVEY_FALLBACKS, surveys.repeat, keeps_on_command=True),
}
_BY_NAME = {word_key(name): command for command in COMMANDS for name in command.names}


def lookup(word: str) -> Command | None:
    """The command for a word, matched after NFKC, case folding and removing spaces."""
    return _BY_NAME.get(word_key(word))


def split(text: str) -> list[str]:
    """Words of a message, after NFKC (so full-width spaces separate words too)."""
    return unicodedata.normalize("NFKC", text).split()


def starts_with_command(text: str) -> bool:
    """Whether the message begins with a command word (group chats need this)."""
    words = split(text)
    return bool(words) and (lookup(words[0]) is not None or lookup(text) is not None)


def handle_text(ctx: Ctx, text: str, *, addressed: bool = True) -> list[m.Message]:
    """Route one message: an open conversation, a command, or the FAQ."""
    ctx.text = text
    words = split(text)
    whole = lookup(text)
    command = whole or (lookup(words[0]) if words else None)
    args = words[1:] if whole is None else []
    conv = flows.load(ctx) if ctx.user_id else None
    flow = FLOWS.get(conv.flow) if conv else None
    if conv and flow:
        if command is not None:
            return (run(ctx, command, args) if command.handler is resume
                    else interrupt(ctx, conv, flow, command, args))
        step = flow.fallbacks.get(word_key(text)) or flow.states.get(conv.state)
        if step is not None:
            return come_back(ctx, step(ctx, text, conv))
        flows.end(ctx)  # a state this version does not know: start afresh
    waiting = bool(ctx.user_id) and any(kept.interrupted for kept in flows.aside(ctx))
    if command is not None:
        replies = run(ctx, command, args)
    elif not addressed or not words:
        return []
    else:
        replies = (facilities.by_category(ctx, text) or faq.by_category(ctx, text)
                   or in_own_words(ctx, text))
    return come_back(ctx, replies) if waiting else replies


def in_own_words(ctx: Ctx, text: str) -> list[m.Message]:
    """A sentence that is not a command: the command it asks for, the event's own answer, or
    the FAQ and facilities (see intents.INTENTS, the table beside this one)."""
    understood = intents.understand(ctx.org, text, ctx.now(),
                                    lambda args: events.about(ctx, list(args)))
    command = lookup(understood.target) if understood.kind == "intent" else None
    if command is not None and command.handler is registration.cancel:
        command = dataclasses.replace(command, handler=registration.confirm_cancel)
    if command is not None:
        return run(ctx, command, list(understood.args))
    if understood.kind == "event":
        return events.fact(ctx, understood.target, list(understood.args))
    return faq.reply(ctx, understood, text)


def interrupt(ctx: Ctx, conv: Conversation, flow: Flow, command: Command, args: list[str]
              ) -> list[m.Message]:
    """A command during a conversation runs. When it opens (or resumes) another conversation,
    or asks a choice of its own (which event, which role), this one waits aside and comes back
    once a reply asks nothing more; else it stays open, a survey with 「アンケートの続き」 (a
    pending privacy notice stays as it is)."""
    replies = run(ctx, command, args)
    now = flows.load(ctx)
    if now is not None and now.topic != conv.topic:
        flows.drop_aside(ctx, now.topic)  # the newest of a topic wins (a second 参加登録)
        flows.put_aside(ctx, conv, interrupted=True)
        if not flow.keeps_on_command:  # a privacy notice has no answers to speak of
            return replies
        kept = [m.text(KEPT_ASIDE), *replies][: m.MAX_MESSAGES]
        return kept if FLOWS[now.flow].keeps_on_command else m.with_quick(kept, CONTINUE)
    if not flow.keeps_on_command:
        return waiting_shown(ctx, replies)
    if now is not None and m.asks(replies):  # one prompt at a time: the survey waits aside
        flows.put_aside(ctx, now, interrupted=True)
        flows.end(ctx)
    return m.with_quick(replies, CONTINUE) if now is not None else replies


def waiting_shown(ctx: Ctx, replies: list[m.Message]) -> list[m.Message]:
    """Replies while a privacy notice is open: a survey waiting beneath it is offered with
    「アンケートの続き」."""
    waiting = any(kept.interrupted for kept in flows.aside(ctx))
    return m.with_quick(replies, CONTINUE) if waiting else replies


def come_back(ctx: Ctx, replies: list[m.Message]) -> list[m.Message]:
    """After a reply while no conversation was open, or one that ended: the conversation
    waiting aside that one interrupted comes back with its current question, unless the reply
    asks a choice (which event, which role); then it waits, offered as 「アンケートの続き」, so
    that one prompt at a time waits for an answer."""
    now = flows.load(ctx)
    if now is not None:
        keeps = FLOWS[now.flow].keeps_on_command if now.flow in FLOWS else True
        return replies if keeps else waiting_shown(ctx, replies)
    if m.asks(replies):
        return m.with_quick(replies, CONTINUE)
    back = flows.bring_back(ctx, lambda kept: kept.interrupted)
    flow = FLOWS.get(back.flow) if back else None
    if back is None or flow is None:
        return replies
    return [*replies, *flow.repeat(ctx, back)][: m.MAX_MESSAGES]


def run(ctx: Ctx, command: Command, args: list[str]) -> list[m.Message]:
    """Run a command, refusing admin commands to non-admins and outside 1:1 chats."""
    if not ctx.user_id and not command.public:
        return [m.text(NO_USER_ID)]
    if command.admin and (ctx.chat != "user" or not ctx.is_admin):
        return [m.text("権限がありません")]
    return command.handler(ctx, args)
