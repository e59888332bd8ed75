"""Conversations as declared state machines: a typed, versioned record per user, and the shape
of a flow's table (its states, the handler for each, and its fallbacks).

A user's conversations form a stack. The one on top is open and takes typed lines; the others
wait aside (one record, at most ASIDE_MAX, kept ASIDE_SECONDS after the last change), newest
last. A user has at most one conversation per topic (a survey for one event, the consent), so a
second start of the same survey resumes the first instead of nesting another."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from linebot_app.bot.context import Ctx
from linebot_app.line import messages as m

ASIDE_SECONDS = 24 * 3600
ASIDE_MAX = 8
VERSION = 1  # bump when Conversation changes shape; older saved records are then dropped


class State(StrEnum):
    """Every state a flow may be in; a conversation can hold no other (a typo raises at once)."""

    ASKING = "asking"  # consent: waiting for 同意する / 同意しない
    ASK = "ask"  # a survey question
    FIX = "fix"  # a question asked again from the summary (修正 N)
    REVIEW = "review"  # the summary: 送信, or 修正 N
    EDIT = "edit?"  # 前回の回答を修正しますか
    QUIT = "quit?"  # 中断しますか


@dataclass
class Conversation:
    """Where one user is in a flow, saved by the bot state between messages."""

    flow: str  # a key of the flow table in commands.py
    state: State  # one of that flow's states
    survey: str = ""  # survey flows: the survey id
    pos: int = 0  # survey flows: the current question
    answers: dict[str, str] = field(default_factory=dict)
    trail: list[int] = field(default_factory=list)  # questions answered, for 戻る
    context: dict[str, str] = field(default_factory=dict)  # stored with the answers (event_id)
    then: list[str] = field(default_factory=list)  # consent: the registration to make after it
    before: State | str = ""  # the state a confirmation prompt (quit?) returns to ("" none)
    interrupted: bool = False  # parked while another conversation runs; comes back by itself
    version: int = VERSION

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "state" or (name == "before" and value):
            value = State(value)  # ValueError for a state no flow declares
        super().__setattr__(name, value)

    @property
    def topic(self) -> str:
        """What the conversation is about: a user holds one conversation per topic."""
        return ":".join(filter(None, (self.flow, self.survey, self.context.get("event_id"))))

    def to_dict(self) -> dict[str, Any]:
        """The record as the bot state stores it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Conversation | None:
        """A saved record, or None when it is missing or of another version."""
        if not data or data.get("version") != VERSION:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError):  # a record this version cannot read is dropped
            return None


Step = Callable[[Ctx, str, Conversation], list[m.Message]]


@dataclass(frozen=True)
class Flow:
    """One conversation's table, in the manner of ConversationHandler(states, fallbacks)."""

    states: dict[State, Step]  # state -> the handler for a line typed in it
    fallbacks: dict[str, Step]  # folded words that mean the same in every state (やめる, 戻る)
    repeat: Callable[[Ctx, Conversation], list[m.Message]]  # 再開 during the conversation
    keeps_on_command: bool  # a command word pauses it and offers 「アンケートの続き」

    def __post_init__(self) -> None:
        unknown = [name for name in self.states if name not in set(State)]
        if unknown:
            raise ValueError(f"a flow names states that State does not declare: {unknown}")


def load(ctx: Ctx, key: str | None = None) -> Conversation | None:
    """The user's open conversation (or one kept under another key); a record this version
    cannot read (another shape, a state no flow has) is forgotten, and the user starts afresh."""
    saved = ctx.services.state.conversation(key or ctx.user_id)
    conv = Conversation.from_dict(saved)
    if saved and conv is None:
        end(ctx, key)
    return conv


def save(ctx: Ctx, conv: Conversation, key: str | None = None, ttl: float | None = None) -> None:
    """Store the conversation; it expires ttl seconds after this answer (State's default)."""
    extra = {} if ttl is None else {"ttl": ttl}
    ctx.services.state.save_conversation(key or ctx.user_id, conv.to_dict(), **extra)


def end(ctx: Ctx, key: str | None = None) -> None:
    """Forget the conversation."""
    ctx.services.state.end_conversation(key or ctx.user_id)


def _aside_key(ctx: Ctx) -> str:
    return f"{ctx.user_id}#survey-paused"  # the key earlier versions kept one paused survey under


def aside(ctx: Ctx) -> list[Conversation]:
    """The conversations waiting beneath the open one, the most recent last."""
    saved = ctx.services.state.conversation(_aside_key(ctx)) or {}
    records = saved.get("stack", []) if "stack" in saved else [saved]  # earlier: one survey
    return [conv for conv in map(Conversation.from_dict, records) if conv is not None]


def _keep_aside(ctx: Ctx, stack: list[Conversation]) -> None:
    if not stack:
        return end(ctx, _aside_key(ctx))
    record = {"version": VERSION, "stack": [conv.to_dict() for conv in stack[-ASIDE_MAX:]]}
    ctx.services.state.save_conversation(_aside_key(ctx), record, ttl=ASIDE_SECONDS)


def put_aside(ctx: Ctx, conv: Conversation, *, interrupted: bool) -> None:
    """Keep a conversation waiting: one another conversation interrupted comes back by itself
    when the open one ends; one left with やめる waits for 再開."""
    kept = Conversation(**{**conv.to_dict(), "interrupted": interrupted})
    _keep_aside(ctx, [*(c for c in aside(ctx) if c.topic != kept.topic), kept])


def drop_aside(ctx: Ctx, topic: str) -> None:
    """Forget a waiting conversation of this topic: a newer one has taken its place."""
    stack = aside(ctx)
    if any(conv.topic == topic for conv in stack):
        _keep_aside(ctx, [conv for conv in stack if conv.topic != topic])


def bring_back(ctx: Ctx, which: Callable[[Conversation], bool] = lambda conv: True,
               instead_of: Conversation | None = None) -> Conversation | None:
    """The most recent waiting conversation that `which` accepts, made the open one (the open
    one, `instead_of`, then waits aside as interrupted); None when none waits."""
    stack = aside(ctx)
    found = next((conv for conv in reversed(stack) if which(conv)), None)
    if found is None:
        return None
    stack.remove(found)
    if instead_of is not None:
        stack = [*(c for c in stack if c.topic != instead_of.topic),
                 Conversation(**{**instead_of.to_dict(), "interrupted": True})]
    found.interrupted = False
    save(ctx, found)
    _keep_aside(ctx, stack)
    return found
