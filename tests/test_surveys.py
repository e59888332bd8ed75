"""Surveys defined in the spreadsheet, answered in LINE, one row per confirmed response."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.schema import Problem
from domain.surveys import TYPES, Question, parse_surveys
from linebot_app.features import answers
from tests.conftest import ADMIN, BotHarness, build_harness, eventually, fresh_bot

U1 = "U" + "1" * 32


def q(kind: str, **kw) -> Question:
    return Question("s", 1, "k", "?", kind, **kw)


@pytest.mark.parametrize("kind,typed,stored", [
    ("phone", "０３－１２３４－５６７８", "03-1234-5678"),
    ("phone", "09012345678", "09012345678"),
    ("postal_code", "〒650-0001", "650-0001"),
    ("postal_code", "６５００００１", "650-0001"),
    ("date", "令和8年4月1日", "2026-04-01"),
    ("date", "２０２６／４／１", "2026-04-01"),
    ("time", "１４：３０", "14:30"),
    ("integer", "１２", "12"),
    ("number", "3.5", "3.5"),
    ("email", "tanaka@example.jp", "tanaka@example.jp"),
    ("yes_no", "はい", "はい"),
    ("yes_no", "no", "いいえ"),
    ("rating", "４", "4"),
    ("rating", "★★★", "3"),
    ("text", " 病院名", " 病院名"),
    ("long_text", "長い\n文章", "長い\n文章"),
])
def test_japanese_input_forms_are_normalised(kind: str, typed: str, stored: str) -> None:
    assert answers.check(q(kind), typed) == stored


def test_choices_accept_the_text_or_the_number() -> None:
    question = q("choice", choices=("初診の患者", "再診の患者"))
    assert answers.check(question, "2") == "再診の患者"
    assert answers.check(question, "初診の患者") == "初診の患者"
    multi = q("multi_choice", choices=("A", "B", "C"))
    assert answers.check(multi, "C、a") == "A, C"


@pytest.mark.parametrize("kind,typed,reason", [
    ("phone", "12345", "10〜11桁"), ("postal_code", "650-00", "7桁"), ("date", "来週", "日付"),
    ("email", "tanaka@", "メールアドレス"), ("integer", "1.5", "整数"), ("yes_no", "たぶん", "はい"),
    ("rating", "6", "1〜5"), ("time", "25:99", "時刻"), ("number", "abc", "数字"),
    ("choice", "3", "選択肢"), ("multi_choice", "", "1つ以上"), ("text", "", "必須"),
])
def test_invalid_answers_are_refused_with_a_reason(kind: str, typed: str, reason: str) -> None:
    question = q(kind, choices=("はい", "いいえ"), required=True)
    with pytest.raises(answers.Invalid) as err:
        answers.check(question, typed)
    assert reason in str(err.value)


def test_limits_and_patterns_apply() -> None:
    assert answers.check(q("integer", min=1, max=10), "10") == "10"
    with pytest.raises(answers.Invalid):
        answers.check(q("integer", min=1, max=10), "11")
    with pytest.raises(answers.Invalid):
        answers.check(q("text", max=3), "四文字だ")
    with pytest.raises(answers.Invalid):
        answers.check(q("text", pattern=r"[A-Z]{3}"), "abc")


def _questions(rows: list[list]) -> list[Problem]:
    problems: list[Problem] = []
    head = ["survey_id", "order", "key", "text", "type", "choices", "required", "min", "max",
            "pattern", "help", "skip_if"]
    parse_surveys([["id", "title", "intro", "outro", "audience", "opens", "closes", "enabled"],
                   ["s1", "t", "", "", "anyone", "", "", ""]], [head, *rows], problems)
    return problems


def test_check_reports_bad_survey_definitions() -> None:
    problems = _questions([
        ["s1", 1, "a", "A?", "colour"],
        ["s1", 2, "b", "B?", "text"],
        ["s1", 3, "b", "B again?", "text"],
        ["s1", 4, "c", "C?", "text", "", "", "", "", "", "", "later=はい"],
        ["s1", 5, "later", "L?", "integer", "", "", 10, 1],
        ["s1", 6, "d", "D?", "choice"],
        ["nope", 1, "e", "E?", "text"],
    ])
    found = {(p.row, p.column) for p in problems}
    assert {(2, "type"), (4, "key"), (5, "skip_if"), (6, "min"), (7, "choices"),
            (8, "survey_id")} <= found


def _answer_all(bot: BotHarness, user: str, replies: list[str]) -> None:
    for text in replies:
        bot.say(text, user=user)


TELEMED = ["みなと中央クリニック", "兵庫県", "みなと市", "〒650-0001", "０７８－１２３－４５６７",
           "はい", "令和8年4月1日", "1,2", "いいえ", "田中", "tanaka@example.jp"]


def _rows(bot: BotHarness, sheet: str) -> list[dict]:
    bot.store.drain(seconds=5)
    rows = list(openpyxl.load_workbook(bot.settings.workbook_path)[sheet].iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=False)) for r in rows[1:] if any(r)]


def test_the_telemed_survey_becomes_one_row_after_confirmation(bot: BotHarness) -> None:
    assert "電話・オンライン診療" in bot.say("アンケート", user=U1)[0]
    bot.say("アンケート telemed", user=U1)
    _answer_all(bot, U1, TELEMED)
    summary = bot.line.last_texts()[-1]
    assert "650-0001" in summary and "初診の患者, 再診の患者" in summary
    assert "→ 2026年4月1日" in summary and "2026-04-01" not in summary  # as people write dates
    assert not bot.store.outbox.has_pending()  # nothing is written before 送信
    assert "ありがとう" in bot.say("送信", user=U1)[0]
    (row,) = _rows(bot, "answers_telemed")
    assert row["postal_code"] == "650-0001" and row["phone"] == "078-123-4567"
    assert row["since"] == "2026-04-01" and row["user_id"] == U1
    assert row["display_name"] == "表示名111"


def test_an_invalid_answer_is_asked_again_with_the_reason(bot: BotHarness) -> None:
    bot.say("survey telemed", user=U1)
    _answer_all(bot, U1, TELEMED[:3])
    reply = bot.say("65", user=U1)
    assert "7桁" in reply[0] and "郵便番号" in reply[1]


def test_skip_if_skips_the_follow_up_questions(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    _answer_all(bot, U1, TELEMED[:5] + ["いいえ"])
    assert "ご担当者のお名前" in bot.line.last_texts()[-1]


def test_back_goes_one_question_back_each_time(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    _answer_all(bot, U1, TELEMED[:3])
    assert bot.say("戻る", user=U1)[0].startswith("(3/11) 所在地の市区町村は?")
    assert bot.say("戻る", user=U1)[0].startswith("(2/11) 所在地の都道府県は?")
    assert bot.say("戻る", user=U1)[0].startswith("(1/11) 医療機関の名前")
    assert bot.say("戻る", user=U1)[0].startswith("(1/11) 医療機関の名前")  # nothing before it
    assert bot.say("三田市民病院", user=U1)[0].startswith("(2/11) 所在地の都道府県は?")


def test_starting_a_paused_survey_again_resumes_it_instead_of_a_second_one(bot: BotHarness
                                                                         ) -> None:
    bot.say("アンケート telemed", user=U1)
    _answer_all(bot, U1, TELEMED[:3] + ["やめる", "はい"])
    again = bot.say("アンケート telemed", user=U1)
    assert "の続きです" in again[0] and again[-1].startswith("(4/"), again
    _answer_all(bot, U1, TELEMED[3:-2] + ["佐藤", "sato@example.jp", "送信"])
    (row,) = _rows(bot, "answers_telemed")
    assert (row["institution"], row["contact_name"]) == ("みなと中央クリニック", "佐藤")
    assert "再開できるアンケートはありません" in bot.say("再開", user=U1)[0]  # none left aside


def test_fix_from_the_summary_then_send(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    _answer_all(bot, U1, TELEMED)
    assert "医療機関の名前" in bot.say("修正 1", user=U1)[0]
    assert "みなと西病院" in bot.say("みなと西病院", user=U1)[0]
    bot.say("送信", user=U1)
    assert _rows(bot, "answers_telemed")[0]["institution"] == "みなと西病院"


def test_quit_keeps_progress_and_resume_continues_after_a_restart(tmp_path) -> None:
    first = build_harness(tmp_path)
    first.say("アンケート telemed", user=U1)
    _answer_all(first, U1, TELEMED[:4])
    assert "中断しますか" in first.say("やめる", user=U1)[0]
    assert "24時間" in first.say("はい", user=U1)[0]
    second = build_harness(tmp_path)  # the server restarted
    assert "電話番号" in second.say("再開", user=U1)[-1]


def test_answering_twice_is_refused_unless_editable(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    _answer_all(bot, U1, TELEMED + ["送信"])
    assert "すでに受け付けています" in bot.say("アンケート telemed", user=U1)[0]
    assert bot.say("アンケート", user=U1) == ["いま回答できるアンケートはありません。"]
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["surveys"]["I1"], wb["surveys"]["I2"] = "editable", "TRUE"
    wb.save(bot.settings.workbook_path)
    bot.store.reload()
    assert "電話・オンライン診療" in bot.say("アンケート", user=U1)[0]  # editable: listed again
    bot.say("アンケート telemed", user=U1)
    _answer_all(bot, U1, ["はい", "改名クリニック", *TELEMED[1:], "送信"])
    rows = _rows(bot, "answers_telemed")
    assert len(rows) == 1 and rows[0]["institution"] == "改名クリニック"


def test_responses_and_nudge_for_admins(bot: BotHarness) -> None:
    bot.consent("U" + "2" * 32)
    bot.say("アンケート telemed", user=U1)
    _answer_all(bot, U1, TELEMED + ["送信"])
    bot.say("アンケート telemed", user="U" + "2" * 32)
    text = bot.say("回答状況 telemed", user=ADMIN)[0]
    assert "回答 1件 / 開始 2人 (完了率 50%)" in text
    assert bot.say("回答状況 telemed", user=U1) == ["権限がありません"]
    assert bot.say("催促 telemed", user=ADMIN) == [
        "未回答の1人のうち、今日まだ催促していない1人に送ります。送り終えたらお知らせします。"]
    assert bot.say("nudge telemed", user=ADMIN) == [
        "未回答の1人のうち、今日まだ催促していない0人に送ります。"]  # once a day
    assert "へのご協力をお願いします" in bot.line.received("U" + "2" * 32)[-1]
    assert bot.line.received(ADMIN)[-1].endswith("の催促を1名に送り終えました。")


def test_a_nudge_with_the_same_text_goes_out_as_one_multicast_once_a_day(bot: BotHarness
                                                                         ) -> None:
    people = [f"U{n:032x}" for n in range(2, 6)]
    for user in people:
        bot.consent(user)
        bot.say("アンケート telemed", user=user)  # started, not answered
    before = len(bot.line.multicasts)
    assert "催促していない4人に送ります" in bot.say("催促 telemed", user=ADMIN)[0]
    [(to, messages, key)] = bot.line.multicasts[before:]
    assert sorted(to) == people and "へのご協力をお願いします" in messages[0]["text"]
    assert not [p for p in bot.line.pushes if p[0] in people]
    assert "催促していない0人に送ります" in bot.say("催促 telemed", user=ADMIN)[0]
    bot.clock.now += dt.timedelta(days=1)
    bot.say("催促 telemed", user=ADMIN)
    assert len(bot.line.multicasts) == before + 2 and bot.line.multicasts[-1][2] != key


def test_a_survey_added_while_the_bot_runs_is_answered_within_ten_seconds(bot: BotHarness
                                                                          ) -> None:
    bot.store.check_seconds = 1.0
    bot.say("ヘルプ", user=U1)
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["surveys"].append(["lunch", "お昼のアンケート", "", "", "anyone", "", "", "TRUE"])
    for row in ([1, "dish", "何を食べましたか?", "text", "", "TRUE"],
                [2, "price", "いくらでしたか?", "integer", "", "TRUE", 0, 5000],
                [3, "again", "また行きますか?", "yes_no", "", "TRUE"]):
        wb["questions"].append(["lunch", *row])
    wb.save(bot.settings.workbook_path)
    eventually(lambda: "いま回答できません" not in bot.say("アンケート lunch", user=U1)[0],
               timeout=10, every=0.5)
    _answer_all(bot, U1, ["カレー", "８５０", "はい", "送信"])
    (row,) = _rows(bot, "answers_lunch")
    assert (row["dish"], row["price"], row["again"]) == ("カレー", 850, "はい")


ANSWER = st.one_of(st.text(max_size=30), st.sampled_from(
    ["はい", "いいえ", "1", "2", "3", "12", "〒650-0001", "03-1234-5678", "令和8年4月1日",
     "a@b.jp", "スキップ", "戻る", "14:30"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(TYPES), min_size=1, max_size=5),
       typed=st.lists(ANSWER, max_size=25))
def test_random_surveys_accept_only_valid_answers(kinds: list[str], typed: list[str]) -> None:
    questions = [Question("r", n, f"k{n}", f"質問{n}", kind, choices=("はい", "いいえ", "たぶん"),
                          required=n % 2 == 0, min=1 if kind in ("integer", "rating") else None,
                          max=5 if kind in ("integer", "rating") else None)
                 for n, kind in enumerate(kinds)]
    for text in typed:
        for question in questions:
            try:
                value = answers.check(question, text)
            except answers.Invalid:
                continue
            assert answers.check(question, value) == value  # a stored value is itself valid


def test_200_people_answering_at_once_give_200_rows_on_google_sheets(tmp_path, emu) -> None:
    import json
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from linebot_app.simulator.platform import sign
    from tests.conftest import SECRET, LiveServer, google_env, text_event

    harness = build_harness(tmp_path, **google_env(emu))
    emu.append("surveys", [["quick", "3問アンケート", "", "", "anyone", "", "", "TRUE"]])
    emu.append("questions", [["quick", *row] for row in (
        [1, "dish", "料理は?", "text", "", "TRUE"], [2, "price", "値段は?", "integer"],
        [3, "again", "また?", "yes_no", "", "TRUE"])])
    harness.store.reload()

    def talk(n: int) -> None:
        user = f"U{n:032x}"
        with requests.Session() as session:
            for text in ("アンケート quick", f"料理{n}", str(n), "はい", "送信"):
                body = json.dumps({"destination": "U0", "events": [text_event(text, user=user)]}
                                  ).encode()
                res = session.post(f"{server.url}/callback", data=body, timeout=30,
                                   headers={"X-Line-Signature": sign(SECRET, body)})
                assert res.status_code == 200

    with LiveServer(harness.app) as server, ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(talk, range(1, 201)))
    assert harness.store.drain(seconds=30)
    rows = emu.rows("answers_quick")
    assert len(rows) == 200
    for row in rows:
        n = int(row["user_id"][1:], 16)
        assert (row["dish"], row["price"], row["again"]) == (f"料理{n}", n, "はい")


def test_a_question_added_later_gets_its_own_column(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    _answer_all(bot, U1, TELEMED + ["送信"])
    bot.store.drain(seconds=5)
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["questions"].append(["telemed", 12, "beds", "病床数は?", "integer"])
    wb.save(bot.settings.workbook_path)
    bot.store.reload()
    other = "U" + "3" * 32
    bot.say("アンケート telemed", user=other)
    _answer_all(bot, other, TELEMED + ["19", "送信"])
    rows = _rows(bot, "answers_telemed")
    header = [c.value for c in openpyxl.load_workbook(bot.settings.workbook_path)
              ["answers_telemed"][1]]
    assert header[:4] == ["id", "created_at", "user_id", "display_name"]
    assert header[-1] == "beds" and [r["beds"] for r in rows] == [None, 19]


QUESTION = st.builds(
    lambda kind, required, n: (kind, required, n),
    st.sampled_from(TYPES), st.booleans(), st.integers(min_value=0, max_value=3))
MOVES = st.one_of(ANSWER, st.sampled_from(["戻る", "やめる", "再開", "送信", "修正 1", "修正 2"]))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(QUESTION, min_size=1, max_size=4), moves=st.lists(MOVES, max_size=15))
def test_random_surveys_and_answer_sequences(shape, moves) -> None:
    from domain.surveys import Survey

    questions = [Question("rand", n, f"q{n}", f"質問{n}", kind,
                          choices=("はい", "いいえ", "たぶん")[: 1 + extra % 3], required=required,
                          min=1 if kind in ("integer", "number") else None,
                          max=9 if kind in ("integer", "number") else None,
                          skip_if=("q0", "はい") if n == 2 and extra == 3 else None)
                 for n, (kind, required, extra) in enumerate(shape)]
    with fresh_bot() as bot:  # a bot per example: nothing carries over from the last one
        bot.store.workbook().surveys["rand"] = Survey("rand", "ランダム", questions=questions)
        bot.store.check_seconds = 3600
        assert bot.say("アンケート rand", user=U1)
        for move in moves:
            reply = bot.say(move, user=U1)
            assert reply or not move.split()  # every non-blank line is answered
        bot.store.drain(seconds=5)
        rows = bot.store.rows("answers_rand")
    assert len(rows) <= 1 and all(r["user_id"] == U1 for r in rows)  # one row, however it went
    for row in rows:
        for question in questions:
            value = row.get(question.key, "")
            if value != "":
                assert answers.check(question, str(value)) == str(value)
            else:
                assert not question.required or question.skip_if


VALID = {"text": "テキスト", "long_text": "長い\nテキスト", "number": "2.5", "integer": "7",
         "choice": "はい", "multi_choice": "1", "yes_no": "いいえ", "date": "2026/4/1",
         "time": "9:05", "phone": "03-1234-5678", "email": "a@b.jp", "postal_code": "6500001",
         "rating": "4"}
FIX_MOVES = st.one_of(ANSWER, st.sampled_from(["戻る", "修正 1", "修正 2", "修正 3", "スキップ",
                                               "やめる", "いいえ", "はい", "再開", "送信"]),
                      st.sampled_from(["はい", "いいえ", "修正 1"]))  # flips the skip_if of q0


def _shown(summary: str, questions: list[Question]) -> dict[str, str]:
    """The answers a summary shows, by key: the text after each 「N. 質問\\n　→ 」."""
    marks = [(q, f"{n}. {q.text}\n　→ ") for n, q in enumerate(questions, start=1)]
    found = sorted((summary.index(mark), q, mark) for q, mark in marks if mark in summary)
    tail = summary.rindex("\nよろしければ「送信」を")
    shown = {}
    for i, (at, q, mark) in enumerate(found):
        end = found[i + 1][0] - 1 if i + 1 < len(found) else tail
        value = summary[at + len(mark):end]
        shown[q.key] = "" if value == "(未回答)" else value
        if q.type == "date" and shown[q.key]:  # shown in Japanese style, stored as ISO
            shown[q.key] = answers.check(q, shown[q.key])
    return shown


def _finish(bot: BotHarness, questions: list[Question], last: list[str]) -> list[str]:
    """Answer whatever is open until the summary shows, then 送信; the last summary is kept."""
    summary = ""
    for _ in range(3 * len(questions) + 4):
        text = last[-1] if last else ""
        if "回答の確認" in text:
            summary = text
            return [summary, *bot.say("送信", user=U1)]
        if "中断しますか" in text:
            last = bot.say("いいえ", user=U1)
            continue
        asked = next((q for q in questions if f") {q.text}" in text), None)
        last = bot.say(VALID[asked.type] if asked else "再開", user=U1)
    raise AssertionError(f"no summary reached; last reply {last}")


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.lists(QUESTION, min_size=1, max_size=4), moves=st.lists(FIX_MOVES, max_size=14))
@example(shape=[("yes_no", True, 0), ("text", True, 3)], moves=["はい", "修正 1", "いいえ"])
@example(shape=[("yes_no", True, 0), ("text", True, 3)], moves=["いいえ", "x", "修正 1", "はい"])
def test_the_stored_row_is_the_summary_the_user_confirmed(shape, moves) -> None:
    from domain.surveys import Survey

    if any(extra == 3 for _, _, extra in shape[1:]):  # later questions hang on q0's はい
        shape = [("yes_no", shape[0][1], shape[0][2]), *shape[1:]]
    questions = [Question("conf", n, f"q{n}", f"質問{n}", kind,
                          choices=("はい", "いいえ", "たぶん")[: 1 + extra % 3], required=required,
                          min=1 if kind in ("integer", "number") else None,
                          max=9 if kind in ("integer", "number") else None,
                          skip_if=("q0", "はい") if n >= 1 and extra == 3 else None)
                 for n, (kind, required, extra) in enumerate(shape)]
    with fresh_bot() as bot:
        bot.store.workbook().surveys["conf"] = Survey("conf", "確認", questions=questions)
        bot.store.check_seconds = 3600
        last, summary = bot.say("アンケート conf", user=U1), ""
        for move in moves:
            summary = last[-1] if last and "回答の確認" in last[-1] else summary
            last = bot.say(move, user=U1) or last
            if "ありがとう" in last[0]:  # 送信 was among the moves
                break
        else:
            summary, *last = _finish(bot, questions, last)
        assert "ありがとう" in last[0], last
        (row,) = _rows(bot, "answers_conf")  # as the sheet holds it
    shown = _shown(summary, questions)
    for q in questions:  # field by field: what was shown is what is stored, nothing else
        expected = answers.stored(q, shown[q.key]) if q.key in shown else ""
        assert (row[q.key] if row[q.key] is not None else "") == expected, (q, row, shown)
        if q.required and q.key in shown:  # a required question shown is answered
            assert expected != "", (q, row, shown)
