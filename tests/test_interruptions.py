"""A command, a rich-menu tap or a postback during a survey runs, and the survey's answers are kept."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import BotHarness
from tests.test_surveys import TELEMED, _rows

U1 = "U" + "1" * 32
MENU = [a["action"]["text"] for a in json.loads(
    (Path(__file__).resolve().parent.parent / "deploy" / "richmenu.json").read_text())["areas"]]


def _quick_labels(bot: BotHarness) -> list[str]:
    last = bot.line.replies[-1][1][-1]
    return [i["action"]["label"] for i in last.get("quickReply", {}).get("items", [])]


def test_every_rich_menu_tap_mid_survey_keeps_every_answer(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED[:5]:
        bot.say(text, user=U1)
    for word in MENU:
        assert bot.say(word, user=U1), word
        if word == "参加登録":  # the privacy notice takes over; the survey waits for 再開
            assert "同意" in bot.say("同意しない", user=U1)[0]
        else:
            assert "アンケートの続き" in _quick_labels(bot), word
    resumed = bot.say("再開", user=U1)
    assert "(6/" in resumed[-1], resumed
    for text in TELEMED[5:]:
        bot.say(text, user=U1)
    assert "ありがとう" in bot.say("送信", user=U1)[0]
    (row,) = _rows(bot, "answers_telemed")
    assert row["postal_code"] == "650-0001" and row["phone"] == "078-123-4567"
    assert row["since"] == "2026-04-01"


def test_a_carousel_postback_mid_survey_runs_and_keeps_the_survey(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    bot.say(TELEMED[0], user=U1)
    reply = bot.tap("詳細 E2", user=U1)
    assert "【" in reply[0] and "アンケートの続き" in _quick_labels(bot)
    assert "(2/" in bot.say("再開", user=U1)[-1]


def test_resume_mid_survey_repeats_the_current_question(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    asked = bot.say(TELEMED[0], user=U1)
    again = bot.say("resume", user=U1)
    assert again[-1] == asked[-1]
    assert bot.say("アンケートの続き", user=U1)[-1] == asked[-1]  # what its quick reply sends
    assert "ありません" not in " ".join(again)


def test_consent_pending_blocks_only_registration(bot: BotHarness) -> None:
    assert "同意" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert "【" in bot.tap("詳細 E2", user=U1)[0]
    assert "📅" in bot.say("予定 E2", user=U1)[0]
    assert "同意" in bot.say("参加登録 E2", user=U1)[0]
    assert "参加の形" in " ".join(bot.say("同意する", user=U1))  # the latest request goes on


def test_quit_asks_first_and_no_keeps_the_question(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    asked = bot.say(TELEMED[0], user=U1)
    assert "中断しますか" in bot.say("やめる", user=U1)[0]
    assert "中断しますか" in bot.say("再開", user=U1)[0]  # 再開 shows the prompt again
    kept = bot.say("いいえ", user=U1)
    assert "の続きです" in kept[0] and kept[-1] == asked[-1]
    bot.say(TELEMED[1], user=U1)
    assert "(3/" in bot.say("再開", user=U1)[-1]  # nothing was lost or put aside


def test_a_quit_survey_continues_within_24_hours_and_not_after(bot: BotHarness) -> None:
    state = bot.app.extensions["seminar_bot"].services.state
    real = state.clock
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED[:3]:
        bot.say(text, user=U1)
    bot.say("やめる", user=U1)
    assert "24時間以内" in bot.say("はい", user=U1)[0]
    state.clock = lambda: real() + 23 * 3600
    assert "(4/" in bot.say("再開", user=U1)[-1]
    bot.say("やめる", user=U1)
    bot.say("はい", user=U1)
    state.clock = lambda: real() + 23 * 3600 + 24 * 3600 + 60
    assert "再開できるアンケートはありません" in bot.say("再開", user=U1)[0]


def test_consent_then_registration_without_a_second_dispatch(bot: BotHarness) -> None:
    assert "同意" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert "参加確定" in bot.say("同意する", user=U1)[0]
    assert "再開" not in " ".join(_quick_labels(bot))


def test_a_conversation_saved_by_another_version_is_dropped_not_misread(bot: BotHarness) -> None:
    state = bot.app.extensions["seminar_bot"].services.state
    state.save_conversation(U1, {"flow": "survey", "survey": "telemed", "pos": 3, "mode": "ask"})
    assert "登録はありません" in bot.say("登録確認", user=U1)[0]
    assert "アンケートの続き" not in _quick_labels(bot)
    state.save_conversation(U1, {"flow": "survey", "state": "someday", "survey": "telemed",
                                 "version": 1})
    assert "(1/" not in " ".join(bot.say("みなと病院", user=U1))
    assert state.conversation(U1) is None  # an unknown state ends it; the user starts afresh


def test_quit_from_a_fix_and_no_returns_to_the_fix(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED:
        bot.say(text, user=U1)
    assert "医療機関の名前" in bot.say("修正 1", user=U1)[0]
    bot.say("やめる", user=U1)
    assert "医療機関の名前" in bot.say("いいえ", user=U1)[-1]
    assert "回答の確認" in bot.say("みなと東病院", user=U1)[0]  # back to the summary


def _continue_offered(bot: BotHarness) -> bool:
    return "アンケートの続き" in _quick_labels(bot)


def test_after_the_privacy_notice_one_prompt_at_a_time_then_the_survey(bot: BotHarness) -> None:
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED[:3]:
        bot.say(text, user=U1)
    notice = bot.say("参加登録", user=U1)
    assert notice[0] == "回答中のアンケートは保存しました。こちらが終わると続きに戻ります。"
    assert "個人情報の取り扱い" in notice[-1] and _continue_offered(bot)
    assert "同意する" in _quick_labels(bot)
    after = bot.say("同意する", user=U1)  # the one open event, so straight to the role
    assert len(after) == 1 and "参加の形を選んでください" in after[0], after
    assert {"参加", "見学", "アンケートの続き"} <= set(_quick_labels(bot))  # tappable, and waiting
    assert "経験" in bot.tap("参加登録 E2 参加", user=U1)[0] and _continue_offered(bot)
    done = bot.tap("参加登録 E2 参加 初心者", user=U1)  # asks nothing more: the survey is back
    assert "参加確定" in done[0] and "の続きです" in done[-2] and "(4/" in done[-1], done
    bot.say(TELEMED[3], user=U1)
    assert "(5/" in bot.say("再開", user=U1)[-1]
    assert bot.say("戻る", user=U1)[0].startswith("(4/11) 郵便番号")


def test_two_detours_within_a_feedback_keep_its_answers(bot: BotHarness) -> None:
    bot.registered(U1)  # the past E1
    bot.say("感想 E1", user=U1)
    bot.say("2", user=U1)
    bot.say("前半が速かった", user=U1)
    assert "個人情報の取り扱い" in bot.say("参加登録", user=U1)[-1]  # detour 1: the notice
    assert "(3/4)" in bot.say("再開", user=U1)[-1]  # 再開 shows the feedback, not the notice
    assert "(3/4)" in bot.say("感想", user=U1)[-1]  # 感想 again resumes it, nothing nests
    bot.say("アンケート", user=U1)  # detour 2: a list, the feedback stays open
    assert "(3/4)" in bot.say("再開", user=U1)[-1]
    bot.say("窓口予約", user=U1)
    bot.say("スキップ", user=U1)
    assert "回答の確認" in bot.say("感想 E1", user=U1)[-1]  # the same event again: the summary
    done = bot.say("送信", user=U1)
    assert "ありがとう" in done[0] and "個人情報の取り扱い" in done[-1]  # the notice comes back
    bot.say("同意しない", user=U1)
    (row,) = _rows(bot, "feedback")
    assert (str(row["rating"]), row["impression"], row["use_cases"]) == (
        "2", "前半が速かった", "窓口予約")


def test_a_survey_survives_a_three_level_detour_with_every_answer(bot: BotHarness) -> None:
    bot.registered(U1)
    bot.say("アンケート telemed", user=U1)
    for text in TELEMED[:2]:
        bot.say(text, user=U1)
    level2 = bot.say("感想 E1", user=U1)  # level 2: the feedback
    assert level2[0].startswith("回答中のアンケートは保存しました") and "(1/4)" in level2[-1]
    bot.say("4", user=U1)
    assert "個人情報の取り扱い" in bot.say("参加登録", user=U1)[-1]  # level 3: the notice
    assert _continue_offered(bot)
    assert "選んでください" in bot.say("どうしよう", user=U1)[0] and _continue_offered(bot)
    assert "【" in bot.tap("詳細 E2", user=U1)[0] and _continue_offered(bot)  # waits visibly
    assert "(2/4)" in bot.say("再開", user=U1)[-1]  # the most recent survey, not the notice
    for text in ("とても良かった", "スキップ", "スキップ"):
        bot.say(text, user=U1)
    done = bot.say("送信", user=U1)
    assert "個人情報の取り扱い" in done[-1]  # the notice came back: it was pending beneath
    after = bot.say("同意する", user=U1)
    assert len(after) == 1 and "参加の形" in after[0] and _continue_offered(bot)
    bot.tap("参加登録 E2 見学 経験者", user=U1)
    assert "(3/11)" in bot.say("再開", user=U1)[-1]  # and the first survey, where it was
    for text in TELEMED[2:]:
        bot.say(text, user=U1)
    assert "ありがとう" in bot.say("送信", user=U1)[0]
    (telemed,) = _rows(bot, "answers_telemed")
    assert (telemed["institution"], telemed["prefecture"], telemed["municipality"]) == (
        "みなと中央クリニック", "兵庫県", "みなと市")
    (feedback,) = _rows(bot, "feedback")
    assert (str(feedback["rating"]), feedback["impression"]) == ("4", "とても良かった")
    assert [r["role"] for r in _rows(bot, "registrations") if r["event_id"] == "E2"] == [
        "observer"]


def test_a_second_feedback_for_the_same_event_continues_the_first(bot: BotHarness) -> None:
    bot.registered(U1)
    bot.say("感想 E1", user=U1)
    bot.say("2", user=U1)
    bot.say("アンケート telemed", user=U1)  # the feedback waits aside
    bot.say(TELEMED[0], user=U1)
    again = bot.say("感想 E1", user=U1)  # resumes it (and the survey waits), no second one
    assert "(2/4)" in again[-1], again
    bot.say("戻る", user=U1)
    bot.say("5", user=U1)  # the newer answer
    for text in ("よかった", "スキップ", "スキップ"):
        bot.say(text, user=U1)
    done = bot.say("送信", user=U1)
    assert "(2/11)" in done[-1]  # the survey came back
    (row,) = _rows(bot, "feedback")
    assert str(row["rating"]) == "5"
    assert "(1/4)" not in " ".join(bot.say("再開", user=U1))


def test_a_second_registration_during_a_survey_leaves_no_stale_privacy_notice(bot: BotHarness
                                                                            ) -> None:
    bot.say("アンケート telemed", user=U1)
    bot.say(TELEMED[0], user=U1)
    assert "個人情報の取り扱い" in bot.say("参加登録", user=U1)[-1]
    assert "(2/" in bot.say("再開", user=U1)[-1]  # the notice waits beneath the survey
    assert "個人情報の取り扱い" in bot.say("参加登録", user=U1)[-1]  # a newer one replaces it
    assert "参加の形" in bot.say("同意する", user=U1)[0]
    bot.tap("参加登録 E2 見学 初心者", user=U1)  # registered; the survey is back at (2/
    for text in TELEMED[1:]:
        bot.say(text, user=U1)
    done = bot.say("送信", user=U1)
    assert done == ["ご協力ありがとうございました。回答はそのまま集計表に入ります。"], done  # and no notice


def test_a_line_typed_while_a_survey_waits_is_not_taken_as_its_answer(bot: BotHarness) -> None:
    bot.consent(U1)
    bot.say("アンケート telemed", user=U1)
    bot.say(TELEMED[0], user=U1)
    assert "参加の形" in bot.say("参加登録", user=U1)[0] and _continue_offered(bot)  # a choice
    reply = bot.say("駐車場はありますか", user=U1)  # not an answer to the hidden question (2/
    assert reply[0].startswith("Q. 駐車場はありますか?") and "(2/" in reply[-1], reply
    bot.say("兵庫県", user=U1)
    assert "(3/" in bot.say("再開", user=U1)[-1]


def test_a_maybe_while_a_survey_waits_keeps_its_choices_tappable(bot: BotHarness) -> None:
    bot.consent(U1)
    bot.say("アンケート telemed", user=U1)
    bot.say(TELEMED[0], user=U1)
    bot.say("参加登録", user=U1)  # a choice: the survey waits aside
    reply = bot.say("図書館って月曜休み?", user=U1)  # もしかして: choices of its own
    assert reply[-1].startswith("もしかして"), reply  # no question sent on top of them
    labels = _quick_labels(bot)
    assert "図書館の開館時間は?" in labels and "アンケートの続き" in labels
    answer = bot.tap("図書館の開館時間は?", user=U1)  # the suggestion, tapped
    assert answer[0].startswith("Q. 図書館の開館時間は?") and "(2/" in answer[-1], answer
