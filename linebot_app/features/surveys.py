"""Surveys from the spreadsheet, asked as a LINE conversation; one confirmed row per response.

The survey flow's states (its table is in commands.py):
  ask     a question is open; a line is its answer
  fix     one question is asked again from the summary (修正 N)
  review  the summary waits for 送信 or 修正 N
  edit?   a second response asks whether to start from the earlier answers
  quit?   やめる waits for its confirmation
Fallbacks in every state: やめる asks to confirm the pause, 戻る goes back a question."""

from __future__ import annotations

import datetime as dt

from ulid import ULID

from domain.dates import word_key
from domain.surveys import Question, Survey
from linebot_app.bot import flows
from linebot_app.bot.context import Ctx, admin_ids
from linebot_app.bot.flows import Conversation, State
from linebot_app.features import answers
from linebot_app.line import messages as m
from linebot_app.line.delivery import Delivery, Job
from linebot_app.logs import digest

BACK, QUIT, SKIP, SEND, FIX = "戻る", "やめる", "スキップ", "送信", "修正"
CONTINUE = "アンケートの続き"
FEEDBACK_QUESTIONS = (
    ("rating", "今回の満足度を1〜5で教えてください(5がいちばん良い)。", "rating", True),
    ("impression", "雑感: 参加してみての感想を自由にお書きください。", "long_text", False),
    ("use_cases", "使えそうな業務: 今日の内容が使えそうな業務はありますか?", "long_text", False),
    ("challenges", "導入の課題: 職場で導入するとしたら、どんな課題がありそうですか?", "long_text", False),
)


def builtin_feedback() -> Survey:
    """The feedback survey used when the spreadsheet does not define one named feedback."""
    return Survey("feedback", "セミナーの感想", editable=True, questions=[
        Question("feedback", n, key, text, kind, required=required)
        for n, (key, text, kind, required) in enumerate(FEEDBACK_QUESTIONS, start=1)])


def feedback_survey(ctx: Ctx) -> Survey:
    """The sheet's feedback survey if organizers wrote one, else the built-in one."""
    defined = ctx.org.surveys.get("feedback")
    return defined if defined and defined.questions else builtin_feedback()


def find(ctx: Ctx, survey_id: str) -> Survey | None:
    """A survey by id; 'feedback' falls back to the built-in one."""
    return feedback_survey(ctx) if survey_id == "feedback" else ctx.org.surveys.get(survey_id)


def audience_ok(ctx: Ctx, survey: Survey) -> bool:
    """Whether this user may answer the survey."""
    return in_audience(ctx, survey.audience)


def in_audience(ctx: Ctx, audience: str) -> bool:
    """Whether this user is in an audience: anyone, admins or registrants:<event id>."""
    if audience == "admins":
        return ctx.is_admin
    if audience.startswith("registrants:"):
        event_id = word_key(audience.split(":", 1)[1])
        return any(word_key(r.event_id) == event_id and r.user_id == ctx.user_id and r.active
                   for r in ctx.services.store.registrations())
    return True


def _open_surveys(ctx: Ctx) -> list[Survey]:
    today = ctx.now().date()
    return [s for s in ctx.org.surveys.values()
            if s.id != "feedback" and s.questions and s.is_open(today) and audience_ok(ctx, s)]


def start(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """アンケート [id]: list the surveys this user may answer, or start one."""
    if not args:  # the list leaves out what this user has answered, unless it is editable
        answered = ctx.services.state.survey_row
        surveys = [s for s in _open_surveys(ctx) if s.editable or not answered(s.id, ctx.user_id)]
        if not surveys:
            return [m.text("いま回答できるアンケートはありません。")]
        lines = [f"・{s.title}" for s in surveys]
        quick = [m.command(s.title, f"アンケート {s.id}") for s in surveys]
        return [m.text("回答できるアンケート:\n" + "\n".join(lines), quick)]
    survey = next((s for s in _open_surveys(ctx) if word_key(s.id) == word_key(args[0])), None)
    if survey is None:
        return [m.text(f"「{args[0]}」というアンケートは、いま回答できません。")]
    return begin(ctx, survey, {}, f"【{survey.title}】\n{survey.intro}".strip())


def begin(ctx: Ctx, survey: Survey, context: dict[str, str], intro: str,
          flow: str = "survey") -> list[m.Message]:
    """Start a survey; context (e.g. the event) goes into the row with the answers."""
    progress = _progress_id(survey, context)
    earlier = ctx.services.state.survey_row(progress, ctx.user_id)
    if earlier and not survey.editable:
        return [m.text(f"「{survey.title}」の回答はすでに受け付けています。ありがとうございました。")]
    conv = Conversation(flow, State.ASK, survey=survey.id, context=context)
    same = conv.topic  # the same survey (and event) again resumes it instead of nesting another
    current = flows.load(ctx)
    if current is not None and current.topic == same:
        return repeat(ctx, current)
    waiting = flows.bring_back(ctx, lambda kept: kept.topic == same)
    if waiting is not None:
        return repeat(ctx, waiting)
    ctx.services.state.survey_started(progress, ctx.user_id)
    if earlier:
        conv.answers, conv.state = _earlier_answers(ctx, survey, earlier), State.EDIT
        flows.save(ctx, conv)
        return [m.text(intro), EDIT_PROMPT]
    return [m.text(intro), *_step(ctx, survey, conv)]


EDIT_PROMPT = m.text("前回の回答を修正しますか?「はい」で前回の答えから始めます"
                     "(「スキップ」で前回の答えのままにできます)。",
                     [m.message_action("はい"), m.message_action(QUIT)])
QUIT_PROMPT = m.text("回答を中断しますか?「はい」で中断します。24時間以内なら「再開」で"
                     "続きから答えられます。", [m.message_action("はい"), m.message_action("いいえ")])


def _earlier_answers(ctx: Ctx, survey: Survey, row_id: str) -> dict[str, str]:
    """The answers of the row this user sent before, as the conversation holds them."""
    row = next((r for r in ctx.services.store.rows(survey.sheet) if r.get("id") == row_id), {})
    return {q.key: str(row[q.key]) for q in survey.questions if row.get(q.key) not in (None, "")}


def _progress_id(survey: Survey, context: dict[str, str]) -> str:
    event = context.get("event_id")
    return f"{survey.id}:{event}" if event else survey.id


def _gone(ctx: Ctx) -> list[m.Message]:
    flows.end(ctx)
    return [m.text("このアンケートは終了しました。")]


def repeat(ctx: Ctx, conv: Conversation) -> list[m.Message]:
    """The open survey's current question (or its summary, or its pending prompt) again: for
    再開, and when the survey comes back after a detour."""
    survey = find(ctx, conv.survey)
    if survey is None:
        return _gone(ctx)
    if conv.state == State.FIX:
        return [question_message(survey, conv.pos)]
    if conv.state in (State.EDIT, State.QUIT):
        return [EDIT_PROMPT if conv.state == State.EDIT else QUIT_PROMPT]
    return [m.text(f"「{survey.title}」の続きです。"), *_step(ctx, survey, conv)]


def _skipped(q: Question, got: dict[str, str]) -> bool:
    return bool(q.skip_if) and word_key(got.get(q.skip_if[0], "")) == word_key(q.skip_if[1])


def _next_pos(survey: Survey, pos: int, got: dict[str, str]) -> int:
    while pos < len(survey.questions) and _skipped(survey.questions[pos], got):
        pos += 1
    return pos


def _step(ctx: Ctx, survey: Survey, conv: Conversation) -> list[m.Message]:
    """Save the conversation and ask the current question (or show the summary)."""
    conv.pos = _next_pos(survey, conv.pos, conv.answers)
    if conv.pos >= len(survey.questions):
        conv.state = State.REVIEW
    flows.save(ctx, conv)
    if conv.state == State.REVIEW:
        return [summary(survey, conv.answers)]
    return [question_message(survey, conv.pos)]


def question_message(survey: Survey, pos: int) -> m.Message:
    """The question, its help, what is expected, and quick replies."""
    q = survey.questions[pos]
    lines = [f"({pos + 1}/{len(survey.questions)}) {q.text}"]
    lines += [q.help] if q.help else []
    if q.type == "multi_choice" or (q.type == "choice" and len(q.choices) > m.MAX_QUICK_REPLY):
        lines += [f"{n}. {c}" for n, c in enumerate(q.choices, start=1)]
        lines.append("番号で答えられます" + ("(複数は「1,3」のように)" if q.type == "multi_choice" else ""))
    lines.append(f"→ {answers.hint(q)}" + ("" if q.required else "(「スキップ」で飛ばせます)"))
    return m.text("\n".join(lines), _quick(q, pos))


def _quick(q: Question, pos: int) -> list[m.Message]:
    """Answers as quick replies (up to 13 choices), then skip/back/quit while there is room."""
    options: list[str] = []
    if q.type == "choice" and len(q.choices) <= m.MAX_QUICK_REPLY:
        options = list(q.choices)
    elif q.type == "yes_no":
        options = ["はい", "いいえ"]
    elif q.type == "rating":
        low, high = int(q.min or 1), int(q.max or 5)
        options = [str(n) for n in range(low, high + 1)][: m.MAX_QUICK_REPLY]
    extras = ([] if q.required else [SKIP]) + ([BACK] if pos > 0 else []) + [QUIT]
    options += extras[: max(0, m.MAX_QUICK_REPLY - len(options))]
    return [m.message_action(o) for o in options]


def summary(survey: Survey, got: dict[str, str]) -> m.Message:
    """Every answer, with 送信 and a way to fix any one."""
    lines = [f"【{survey.title}】回答の確認"]
    asked = [(n, q) for n, q in enumerate(survey.questions, start=1) if not _skipped(q, got)]
    lines += [f"{n}. {q.text}\n　→ {answers.shown(q, got.get(q.key, '')) or '(未回答)'}"
              for n, q in asked]
    lines.append("よろしければ「送信」を。直すときは「修正 番号」と送ってください。")
    quick = [m.message_action(SEND)] + [m.message_action(f"{FIX} {n}") for n, _ in asked[:11]]
    return m.text("\n".join(lines), quick + [m.message_action(QUIT)])


# ---- the handlers of the survey flow's table ---------------------------------------------------
def ask_quit(ctx: Ctx, text: str, conv: Conversation) -> list[m.Message]:
    """やめる: ask to confirm; nothing is put aside yet."""
    if find(ctx, conv.survey) is None:
        return _gone(ctx)
    if conv.state != State.QUIT:
        conv.before, conv.state = conv.state, State.QUIT
    flows.save(ctx, conv)
    return [QUIT_PROMPT]


def confirm_quit(ctx: Ctx, text: str, conv: Conversation) -> list[m.Message]:
    """The answer to 「中断しますか」: はい puts the survey aside for 24 h; else it goes on."""
    survey = find(ctx, conv.survey)
    if survey is None:
        return _gone(ctx)
    if word_key(text) not in answers.YES:
        conv.state = conv.before or State.ASK
        flows.save(ctx, conv)
        return repeat(ctx, conv)
    conv.state = conv.before or State.ASK
    flows.put_aside(ctx, conv, interrupted=False)
    flows.end(ctx)
    return [m.text(f"「{survey.title}」を中断しました。24時間以内なら「再開」で続きから答えられます。",
                   [m.message_action("再開")])]


def back(ctx: Ctx, text: str, conv: Conversation) -> list[m.Message]:
    """戻る: the question answered before this one."""
    survey = find(ctx, conv.survey)
    if survey is None:
        return _gone(ctx)
    conv.pos, conv.state = (conv.trail.pop() if conv.trail else 0), State.ASK
    return _step(ctx, survey, conv)


def confirm_edit(ctx: Ctx, text: str, conv: Conversation) -> list[m.Message]:
    """The answer to 「前回の回答を修正しますか」: はい starts from the earlier answers."""
    survey = find(ctx, conv.survey)
    if survey is None:
        return _gone(ctx)
    if word_key(text) not in answers.YES:
        return [EDIT_PROMPT]
    conv.state = State.ASK
    return _step(ctx, survey, conv)


def review(ctx: Ctx, text: str, conv: Conversation) -> list[m.Message]:
    """The summary's answer: 送信 writes the row, 修正 N asks question N again."""
    survey = find(ctx, conv.survey)
    if survey is None:
        return _gone(ctx)
    key = word_key(text)
    if key == SEND and _unasked(survey, conv.answers) is not None:  # never stored half-done
        return _after_fix(ctx, survey, conv)
    if key == SEND:
        return submit(ctx, survey, conv)
    number = (answers.whole_number(answers.normalized(key[len(FIX):])) if key.startswith(FIX)
              else None)
    if number is not None and 1 <= number <= len(survey.questions):
        conv.pos, conv.state = number - 1, State.FIX
        flows.save(ctx, conv)
        return [question_message(survey, conv.pos)]
    return [summary(survey, conv.answers)]


def take(ctx: Ctx, text: str, conv: Conversation) -> list[m.Message]:
    """An answer to the open question (state ask, or fix from the summary)."""
    survey = find(ctx, conv.survey)
    if survey is None:
        return _gone(ctx)
    q = survey.questions[min(conv.pos, len(survey.questions) - 1)]
    try:
        skip = word_key(text) == SKIP and (not q.required or q.key in conv.answers)
        value = conv.answers.get(q.key, "") if skip else answers.check(q, text)
    except answers.Invalid as err:
        return [m.text(f"もう一度お願いします: {err}"), question_message(survey, conv.pos)]
    conv.answers[q.key] = value
    if conv.state == State.FIX:
        return _after_fix(ctx, survey, conv)
    conv.trail.append(conv.pos)
    conv.pos += 1
    return _step(ctx, survey, conv)


def _unasked(survey: Survey, got: dict[str, str]) -> int | None:
    """The first question a fix made relevant that was never answered (or None)."""
    return next((n for n, q in enumerate(survey.questions)
                 if q.key not in got and not _skipped(q, got)), None)


def _after_fix(ctx: Ctx, survey: Survey, conv: Conversation) -> list[m.Message]:
    """Back to the summary, unless the fix opened questions that still need an answer."""
    pos = _unasked(survey, conv.answers)
    if pos is None:
        conv.state = State.REVIEW
        return _step(ctx, survey, conv)
    conv.pos = pos  # stay in fix: each newly relevant question, then the summary
    flows.save(ctx, conv)
    return [m.text("この答えで、次の質問にも答えていただく必要があります。"),
            question_message(survey, pos)]


def submit(ctx: Ctx, survey: Survey, conv: Conversation) -> list[m.Message]:
    """Write the confirmed response: a new row, or an update when editing is allowed."""
    state, store = ctx.services.state, ctx.services.store
    given = conv.answers  # an answer a later fix made skipped is not stored
    got = {q.key: "" if _skipped(q, given) else answers.stored(q, given.get(q.key, ""))
           for q in survey.questions}
    progress = _progress_id(survey, conv.context)
    existing = state.survey_row(progress, ctx.user_id)
    flows.end(ctx)
    if existing and not survey.editable:
        return [m.text("このアンケートの回答はすでに受け付けています。")]
    if existing:
        store.update(survey.sheet, existing, {**got, "created_at": ctx.stamp()})
        row_id = existing
    else:
        row_id = f"S{ULID()}"
        store.add(survey.sheet, {"id": row_id, "created_at": ctx.stamp(), **conv.context,
                                 "user_id": ctx.user_id,
                                 "display_name": ctx.services.line.display_name(ctx.user_id),
                                 **got})
    state.survey_completed(progress, ctx.user_id, row_id)
    return [m.text(survey.outro or "ご回答ありがとうございました。")]


# ---- organizers -------------------------------------------------------------------------------
def _survey_arg(ctx: Ctx, args: list[str]) -> Survey | m.Message:
    survey = ctx.org.surveys.get(args[0]) if args else None
    return survey or m.text("アンケートIDを指定してください(例: 回答状況 telemed)。")


def responses(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """回答状況 <id>: responses, completion rate and the last response time."""
    survey = _survey_arg(ctx, args)
    if isinstance(survey, dict):
        return [survey]
    started, done, last = ctx.services.state.survey_counts(survey.id)
    rate = f"{100 * done / started:.0f}%" if started else "-"
    when = (dt.datetime.fromtimestamp(last, ctx.services.tz).strftime("%Y-%m-%d %H:%M")
            if last else "なし")
    return [m.text(f"【{survey.title}】\n回答 {done}件 / 開始 {started}人 (完了率 {rate})\n"
                   f"最後の回答: {when}")]


def nudge(ctx: Ctx, args: list[str]) -> list[m.Message]:
    """催促 <id>: remind the audience who have not answered, at most once a day each."""
    survey = _survey_arg(ctx, args)
    if isinstance(survey, dict):
        return [survey]
    people = [u for u in _audience(ctx, survey)
              if not ctx.services.state.survey_row(survey.id, u)]
    today = ctx.now().date().isoformat()
    message = m.text(f"「{survey.title}」へのご協力をお願いします。",
                     [m.command("回答する", f"アンケート {survey.id}", f"「{survey.title}」に回答する")])
    job = Job(f"nudge:{survey.id}:{ULID()}", ctx.user_id, f"「{survey.title}」の催促")
    sent = ctx.services.deliveries.plan([Delivery(
        f"nudge:{survey.id}:{digest(user)}:{today}", "", "survey-nudge", [user], [message],
        f"アンケート催促 {survey.id}") for user in people], job)  # one multicast, a key each
    return [m.text(f"未回答の{len(people)}人のうち、今日まだ催促していない{sent}人に送ります。"
                   + ("送り終えたらお知らせします。" if sent else ""))]


def _audience(ctx: Ctx, survey: Survey) -> list[str]:
    if survey.audience == "admins":
        return sorted(admin_ids(ctx.org.settings))
    regs = ctx.services.store.registrations()
    if survey.audience.startswith("registrants:"):
        event_id = word_key(survey.audience.split(":", 1)[1])
        return sorted({r.user_id for r in regs if word_key(r.event_id) == event_id and r.active})
    return sorted({r.user_id for r in regs} | set(ctx.services.state.known_users()))
