"""What users can say to the bot, and what it answers."""

from __future__ import annotations

import datetime as dt
import re

import openpyxl
import pytest

from linebot_app.bot.commands import COMMANDS, lookup
from linebot_app.bot.flows import Conversation, Flow, State
from tests.conftest import ADMIN, BotHarness, follow_event

U1 = "U" + "1" * 32
U2 = "U" + "2" * 32


def _replied(bot: BotHarness) -> list[dict]:
    return bot.line.replies[-1][1]


def _quick_labels(bot: BotHarness) -> list[str]:
    last = _replied(bot)[-1]
    return [i["action"]["label"] for i in last.get("quickReply", {}).get("items", [])]


def _rows(bot: BotHarness, sheet: str) -> list[dict]:
    bot.store.flush()
    ws = openpyxl.load_workbook(bot.settings.workbook_path)[sheet]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=False)) for r in rows[1:] if any(r)]


def test_every_command_has_a_japanese_name_and_an_english_alias() -> None:
    for command in COMMANDS:
        assert any(not n.isascii() for n in command.names)
        assert any(n.isascii() for n in command.names)


@pytest.mark.parametrize("typed", ["ヘルプ", "help", "ＨＥＬＰ", "ﾍﾙﾌﾟ", " Help ", "ヘ ル プ"])
def test_commands_match_after_width_case_and_space_folding(typed: str) -> None:
    assert lookup(typed) is not None and lookup(typed).names[0] == "ヘルプ"


def test_help_lists_the_commands(bot: BotHarness) -> None:
    text = bot.say("help")[0]
    for word in ("イベント", "予定", "参加登録", "キャンセル", "登録確認", "感想"):
        assert word in text
    assert "再読込" not in text


def test_help_shows_admin_commands_to_admins(bot: BotHarness) -> None:
    assert "再読込" in bot.say("ヘルプ", user=ADMIN)[0]


def test_events_is_a_carousel_of_upcoming_events_with_buttons(bot: BotHarness) -> None:
    bot.say("イベント")
    message = _replied(bot)[0]
    assert message["type"] == "flex" and message["contents"]["type"] == "carousel"
    bubbles = message["contents"]["contents"]
    assert len(bubbles) == 1  # the 2020 seminar is past
    labels = [b["action"]["label"] for b in bubbles[0]["footer"]["contents"]]
    assert labels == ["参加登録", "詳細", "予定"]


def test_events_carousel_holds_at_most_twelve_bubbles(bot: BotHarness) -> None:
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    for n in range(20):
        wb["events"].append([f"X{n}", f"追加イベント{n}", "2027-01-10", "10:00", "11:00"])
    wb.save(bot.settings.workbook_path)
    bot.store.reload()
    bot.say("events")
    assert len(_replied(bot)[0]["contents"]["contents"]) == 12


def test_cancelled_events_are_not_listed(bot: BotHarness) -> None:
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["events"]["K3"] = "cancelled"
    wb.save(bot.settings.workbook_path)
    bot.store.reload()
    assert "ありません" in bot.say("イベント")[0]


@pytest.mark.parametrize("arg", ["E1", "4/30", "４／３０", "2020/4/30", "令和2年4月30日"])
def test_schedule_of_the_2020_seminar(bot: BotHarness, arg: str) -> None:
    text = bot.say(f"予定 {arg}")[0]
    assert "行政向けICTハンズオンセミナー" in text
    for line in ("19:00〜19:10 運営自己紹介など", "19:10〜19:20 企画コンセプトの説明",
                 "19:20〜19:40 ハンズオン研修のイメージ", "19:40〜20:15 みんなで企画ブラッシュアップ!",
                 "20:15〜20:30 学びの共有・今後の展開"):
        assert line in text


def test_schedule_without_argument_is_the_next_event(bot: BotHarness) -> None:
    assert "Excelの調査票" in bot.say("schedule")[0]


def test_schedule_today_and_tomorrow(bot: BotHarness) -> None:
    bot.clock.now = dt.datetime(2026, 12, 29, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert "Excelの調査票" in bot.say("予定 今日")[0]
    assert "見つかりません" in bot.say("予定 明日")[0]
    bot.clock.now -= dt.timedelta(days=1)
    assert "Excelの調査票" in bot.say("スケジュール 明日")[0]


def test_details_show_venue_and_preparation(bot: BotHarness) -> None:
    text = bot.tap("詳細 E2")[0]
    assert "研修室" in text and "事前準備" in text


def test_registration_in_one_message_is_confirmed(bot: BotHarness) -> None:
    bot.consent(U1)
    text = bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert "参加確定" in text
    rows = _rows(bot, "registrations")
    assert [(r["event_id"], r["role"], r["level"], r["status"]) for r in rows] == [
        ("E2", "participant", "beginner", "confirmed")]
    assert rows[0]["display_name"] == "表示名111"


def test_english_alias_registers_too(bot: BotHarness) -> None:
    bot.consent(U1)
    assert "参加確定" in bot.say("register e2 observer experienced", user=U1)[0]


def test_missing_parts_are_asked_with_quick_replies(bot: BotHarness) -> None:
    bot.consent(U1)
    assert bot.say("参加登録", user=U1)[0].startswith("Excelの調査票")  # the one open event
    assert _quick_labels(bot) == ["参加", "見学"]
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["events"].append(["E3", "追加のハンズオン", "2027-01-20", "10:00〜12:00"])
    wb.save(bot.settings.workbook_path)
    bot.store.reload()
    (which,) = bot.say("参加登録", user=U1)  # two open events: which one?
    assert "・追加のハンズオン 2027年1月20日" in which and "E2" not in which and "E3" not in which
    assert _quick_labels(bot) == ["Excelの調査票をアプリにするハンズ…", "追加のハンズオン"]
    first = _replied(bot)[-1]["quickReply"]["items"][0]["action"]
    assert first["displayText"] == "「Excelの調査票をアプリにするハンズオン」に申し込む"  # words
    bot.tap(first["data"], user=U1)  # the postback carries the id
    assert _quick_labels(bot) == ["参加", "見学"]
    assert [i["action"]["displayText"] for i in _replied(bot)[-1]["quickReply"]["items"]] == [
        "参加", "見学"]
    bot.say("参加登録 E2 参加", user=U1)
    assert _quick_labels(bot) == ["初心者", "経験者"]
    assert "参加確定" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]


def test_first_registration_asks_for_consent_once(bot: BotHarness) -> None:
    text = bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert "個人情報" in text and "終了後1年で削除" in text
    assert _quick_labels(bot) == ["同意する", "同意しない"]
    assert "参加確定" in bot.say("同意する", user=U1)[0]
    bot.say("キャンセル E2", user=U1)
    assert "参加確定" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]


def test_declining_consent_registers_nothing(bot: BotHarness) -> None:
    bot.say("参加登録 E2 参加 初心者", user=U1)
    assert "中止" in bot.say("同意しない", user=U1)[0]
    assert _rows(bot, "registrations") == []


def test_registering_twice_adds_no_row(bot: BotHarness) -> None:
    bot.consent(U1)
    bot.say("参加登録 E2 参加 初心者", user=U1)
    assert "すでに登録済み" in bot.say("参加登録 E2 見学 経験者", user=U1)[0]
    assert len(_rows(bot, "registrations")) == 1


def test_capacity_is_per_role_with_a_numbered_waitlist(bot: BotHarness) -> None:
    users = [f"U{n:032x}" for n in range(1, 8)]
    for user in users:
        bot.consent(user)
    answers = [bot.say("参加登録 E2 参加 経験者", user=u)[0] for u in users[:6]]
    assert all("参加確定" in a for a in answers[:4])
    assert "キャンセル待ち(1番目)" in answers[4]
    assert "キャンセル待ち(2番目)" in answers[5]
    assert "参加確定" in bot.say("参加登録 E2 見学 初心者", user=users[6])[0]


@pytest.mark.parametrize("status,word", [("closed", "受付は終了"), ("cancelled", "中止")])
def test_closed_and_cancelled_events_are_refused(bot: BotHarness, status: str, word: str) -> None:
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["events"]["K3"] = status
    wb.save(bot.settings.workbook_path)
    bot.store.reload()
    bot.consent(U1)
    assert word in bot.say("参加登録 E2 参加 初心者", user=U1)[0]


def test_past_event_is_refused(bot: BotHarness) -> None:
    bot.consent(U1)
    assert "開催済み" in bot.say("参加登録 E1 参加 初心者", user=U1)[0]


def test_after_the_deadline_is_refused(bot: BotHarness) -> None:
    bot.consent(U1)
    bot.clock.now = dt.datetime(2026, 12, 28, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert "締切" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]


def test_cancel_promotes_the_first_waitlisted_with_a_retry_keyed_push(bot: BotHarness) -> None:
    users = [f"U{n:032x}" for n in range(1, 7)]
    for user in users:
        bot.consent(user)
        bot.say("参加登録 E2 参加 初心者", user=user)
    assert "キャンセルしました" in bot.say("キャンセル E2", user=users[0])[0]
    (to, messages, key), = bot.line.pushes
    assert to == users[4] and "参加が確定" in messages[0]["text"] and len(key) == 36
    status = bot.say("登録確認", user=users[5])[0]
    assert "キャンセル待ち(1番目)" in status
    by_user = {r["user_id"]: r["status"] for r in _rows(bot, "registrations")}
    assert by_user[users[0]] == "cancelled" and by_user[users[4]] == "confirmed"


def test_cancel_without_an_event_asks_which(bot: BotHarness) -> None:
    bot.consent(U1)
    bot.say("参加登録 E2 参加 初心者", user=U1)
    bot.say("cancel", user=U1)
    assert _quick_labels(bot) == ["Excelの調査票をアプリ…をキャンセル"]  # a title, not an id
    (item,) = _replied(bot)[-1]["quickReply"]["items"]
    assert item["action"]["displayText"] == "「Excelの調査票をアプリにするハンズオン」をキャンセル"
    assert "キャンセルしました" in bot.tap(item["action"]["data"], user=U1)[0]


def test_status_lists_registrations(bot: BotHarness) -> None:
    assert "登録はありません" in bot.say("登録確認", user=U1)[0]
    bot.consent(U1)
    bot.say("参加登録 E2 見学 経験者", user=U1)
    text = bot.say("status", user=U1)[0]
    assert "Excelの調査票" in text and "見学" in text and "参加確定" in text


def test_feedback_conversation_makes_one_row(bot: BotHarness) -> None:
    bot.registered(U1)
    bot.say("感想 E1", user=U1)
    assert "満足度" in bot.line.last_texts()[-1]
    assert "1〜5" in bot.say("とても良い", user=U1)[0]
    bot.say("５", user=U1)
    bot.say("=HYPERLINK(\"http://x\")", user=U1)
    bot.say("スキップ", user=U1)
    assert "送信" in bot.say("窓口の予約管理", user=U1)[0]
    assert "ありがとう" in bot.say("送信", user=U1)[0]
    (row,) = _rows(bot, "feedback")
    assert (row["event_id"], row["rating"], row["impression"], row["challenges"]) == (
        "E1", 5, "=HYPERLINK(\"http://x\")", "窓口の予約管理")
    assert row["use_cases"] in (None, "")


def test_feedback_can_be_quit(bot: BotHarness) -> None:
    bot.registered(U1)
    bot.say("feedback E1", user=U1)
    assert "中断しますか" in bot.say("やめる", user=U1)[0]
    assert "中断しました" in bot.say("はい", user=U1)[0]
    assert _rows(bot, "feedback") == []


def test_feedback_state_survives_a_restart_and_expires_after_30_minutes(tmp_path) -> None:
    from tests.conftest import build_harness

    first = build_harness(tmp_path)
    first.registered(U1)
    first.say("感想 E1", user=U1)
    second = build_harness(tmp_path)
    assert "雑感" in second.say("4", user=U1)[0]
    state = second.app.extensions["seminar_bot"].services.state
    real = state.clock
    state.clock = lambda: real() + 31 * 60
    assert "見つかりませんでした" in second.say("とても良かった", user=U1)[0]


@pytest.mark.parametrize("query", ["ごみの収集日", "ゴミ", "ｺﾞﾐ", "ごみ", "収集日はいつ"])
def test_faq_matching_ignores_kana_width_and_case(bot: BotHarness, query: str) -> None:
    assert "燃やすごみ" in bot.say(query)[0]


def test_a_faq_category_lists_its_questions_to_tap(bot: BotHarness) -> None:
    assert bot.say("粗大ごみ")[0].startswith("Q. 粗大ごみを出すには?")
    (listing,) = bot.say("手続き")
    assert listing.splitlines() == ["「手続き」のよくある質問:", "・住民票の写しはどこで取れますか?",
                                    "・マイナンバーカードの申請方法は?", "・引っ越しの手続きは?"]
    assert _quick_labels(bot)[0] == "住民票の写しはどこで取れますか?"
    assert bot.say("住民票の写しはどこで取れますか?")[0].startswith("Q. 住民票の写し")


def test_faq_without_match_offers_categories_and_help(bot: BotHarness) -> None:
    assert "見つかりませんでした" in bot.say("宇宙旅行の予約")[0]
    labels = _quick_labels(bot)
    assert "くらし" in labels and "ヘルプ" in labels


def test_follow_gets_the_welcome_message(bot: BotHarness) -> None:
    bot.post(follow_event())
    assert "友だち追加ありがとうございます" in bot.line.last_texts()[0]


def test_group_chat_answers_only_commands_and_mentions(bot: BotHarness) -> None:
    assert bot.say("今日は寒いですね", chat="group") == []
    assert "Excelの調査票" in bot.say("予定", chat="group")[0]
    assert "燃やすごみ" in bot.say("@bot ごみの日", chat="group", mention_self=(0, 4))[0]


def test_admin_command_is_refused_to_others_and_in_groups(bot: BotHarness) -> None:
    assert bot.say("再読込", user=U1) == ["権限がありません"]
    assert bot.say("reload", user=ADMIN, chat="group") == ["権限がありません"]
    assert "読み込み直しました" in bot.say("再読込", user=ADMIN)[0]


def test_postback_runs_the_same_command_as_text(bot: BotHarness) -> None:
    bot.consent(U1)
    bot.tap("参加登録 E2", user=U1)
    assert _quick_labels(bot) == ["参加", "見学"]


HELP_SHORTCUTS = {  # each quick reply under the help text, and what tapping it answers
    "イベント": "開催予定のイベント: Excelの調査票をアプリにするハンズオン",
    "予定": "2026年12月29日(火) 14:00〜16:00",
    "参加登録": "個人情報の取り扱いについてご確認ください",
    "登録確認": "現在、登録はありません。",
    "感想": "感想は、参加登録したイベントの開催後に受け付けます。",
}


def test_quick_reply_actions_send_commands_that_work(bot: BotHarness) -> None:
    bot.say("help")
    items = _replied(bot)[-1]["quickReply"]["items"]
    assert [(i["type"], i["action"]["type"], i["action"]["label"], i["action"]["text"])
            for i in items] == [("action", "message", w, w) for w in HELP_SHORTCUTS]
    for text, answer in HELP_SHORTCUTS.items():
        assert answer in bot.say(text)[0], text


def test_a_state_no_flow_declares_cannot_be_written() -> None:
    conv = Conversation("survey", State.ASK)
    conv.state = "review"  # a declared state, by its value
    assert conv.state is State.REVIEW
    with pytest.raises(ValueError):
        conv.state = "reveiw"
    with pytest.raises(ValueError):
        Conversation("survey", "reveiw")
    with pytest.raises(ValueError):
        conv.before = "qiut?"
    with pytest.raises(ValueError, match="reveiw"):
        Flow({"reveiw": lambda ctx, text, c: []}, {}, lambda ctx, c: [], keeps_on_command=True)


def test_buttons_and_what_they_echo_name_titles_not_ids(bot: BotHarness) -> None:
    bot.consent(U1)
    shown, texts = [], []
    for line in ("参加登録", "参加登録 E2 参加", "参加登録 E2 参加 初心者", "登録確認", "キャンセル",
                 "詳細 E2", "アンケート", "感想"):
        texts += bot.say(line, user=U1)
        items = _replied(bot)[-1].get("quickReply", {}).get("items", [])
        shown += [a.get("label", "") + " / " + a.get("displayText", a.get("text", ""))
                  for a in (i["action"] for i in items)]
    assert len(shown) >= 10
    assert [s for s in shown if re.search(r"\bE\d\b|telemed|feedback", s)] == []
    assert "電話・オンライン診療の実施状況調査(サンプル)" in " ".join(shown)  # surveys by title
    assert not [t for t in texts if "(アンケート telemed)" in t]
