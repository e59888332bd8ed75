"""Running a seminar: organizer commands, reminders, deliveries, rooms and check-in."""

from __future__ import annotations

import csv
import datetime as dt
import threading
from collections import Counter

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.schema import Registration
from linebot_app.features import rooms
from linebot_app.line.messages import MAX_TEXT_UTF16, utf16_len
from linebot_app.ops import scheduler
from linebot_app.ops.export import collect, write_csv, write_xlsx
from tests.conftest import ADMIN, JST, BotHarness, run_export
from tests.test_simulator import ORGANIZER, Sim, sim  # noqa: F401  (the live simulator)

USERS = [f"U{n:032x}" for n in range(1, 7)]


def _register(bot: BotHarness, user: str, role: str = "参加", level: str = "初心者") -> None:
    bot.consent(user)
    bot.say(f"参加登録 E2 {role} {level}", user=user)


def _seed(bot: BotHarness, count: int, event: str = "E2", status: str = "confirmed") -> list[str]:
    users = [f"U{n:032x}" for n in range(10_000, 10_000 + count)]
    for n, user in enumerate(users):
        bot.store.add("registrations", {
            "id": f"R{n:06d}", "created_at": f"2026-11-01T10:00:00.{n % 1000:03d}+09:00",
            "event_id": event, "user_id": user, "role": "participant", "level": "beginner",
            "status": status})
    return users


def _sheet(bot: BotHarness, name: str) -> list[dict]:
    bot.store.drain(seconds=5)
    rows = list(openpyxl.load_workbook(bot.settings.workbook_path)[name].iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=False)) for r in rows[1:] if any(r)]


ADMIN_COMMANDS = ["集計", "stats E2", "参加者 E2", "attendees E2", "リマインド E2", "remind E2",
                  "お知らせ E2 会場変更です", "announce E2 hello", "部屋割り E2", "rooms E2 3"]


@pytest.mark.parametrize("command", ADMIN_COMMANDS)
def test_organizer_commands_are_refused_to_others(bot: BotHarness, command: str) -> None:
    assert bot.say(command, user=USERS[0]) == ["権限がありません"]


@pytest.mark.parametrize("command", ADMIN_COMMANDS)
def test_organizer_commands_are_refused_in_group_chats(bot: BotHarness, command: str) -> None:
    assert bot.say(command, user=ADMIN, chat="group") == ["権限がありません"]


# what each command answers with one confirmed beginner in E2, and what that person is sent
ADMIN_ANSWERS = {
    "集計": (["【E2 Excelの調査票をアプリにするハンズオン】", "参加: 確定 1 / キャンセル待ち 0"], None),
    "stats E2": (["【E2 Excelの調査票をアプリにするハンズオン】", "参加: 確定 1 / キャンセル待ち 0"],
                 None),
    "参加者 E2": (["登録 1名", "1. 表示名001 参加/初心者 参加確定"], None),
    "attendees E2": (["登録 1名", "1. 表示名001 参加/初心者 参加確定"], None),
    "リマインド E2": (["リマインドを1名に送ります。送り終えたらお知らせします。"], "事前準備"),
    "remind E2": (["リマインドを1名に送ります。"], "事前準備"),
    "お知らせ E2 会場変更です": (["お知らせを1名に送ります。"], "会場変更です"),
    "announce E2 hello": (["お知らせを1名に送ります。"], "hello"),
    "部屋割り E2": (["部屋割り(1部屋5名まで)", "初心者1: 1名", "部屋のお知らせを1名に送ります。"],
                    "あなたの部屋"),
    "rooms E2 3": (["部屋割り(1部屋3名まで)", "初心者1: 1名"], "あなたの部屋"),
}
DONE = {"リマインド E2": "リマインド", "remind E2": "リマインド", "お知らせ E2 会場変更です": "お知らせ",
        "announce E2 hello": "お知らせ", "部屋割り E2": "部屋のお知らせ", "rooms E2 3": "部屋のお知らせ"}


def test_every_organizer_command_has_an_expected_answer() -> None:
    assert sorted(ADMIN_ANSWERS) == sorted(ADMIN_COMMANDS)


@pytest.mark.parametrize("command", ADMIN_COMMANDS)
def test_organizer_commands_answer_the_admin(bot: BotHarness, command: str) -> None:
    _register(bot, USERS[0])
    told = len(bot.line.received(USERS[0]))
    (answer,) = bot.say(command, user=ADMIN)
    parts, delivered = ADMIN_ANSWERS[command]
    assert all(part in answer for part in parts), answer
    sent = bot.line.received(USERS[0])[told:]
    if delivered is None:
        assert sent == []
    else:
        assert len(sent) == 1 and delivered in sent[0]
    done = [t for t in bot.line.received(ADMIN) if t.endswith("送り終えました。")]
    assert done == ([f"{DONE[command]}を1名に送り終えました。"] if command in DONE else [])


def test_stats_count_roles_levels_status_attendance_and_feedback(bot: BotHarness) -> None:
    for user, role, level in zip(USERS, ["参加"] * 5 + ["見学"],
                                 ["初心者", "初心者", "経験者", "経験者", "経験者", "初心者"],
                                 strict=True):
        _register(bot, user, role, level)
    bot.clock.now = dt.datetime(2026, 12, 29, 13, 45, tzinfo=JST)
    bot.say("出席", user=USERS[1])
    bot.clock.now = dt.datetime(2026, 12, 29, 16, 30, tzinfo=JST)  # feedback after the start
    bot.say("感想 E2", user=USERS[0])
    for answer in ("4", "良かった", "スキップ", "スキップ", "送信"):
        bot.say(answer, user=USERS[0])
    text = bot.say("集計 E2", user=ADMIN)[0]
    assert "参加: 確定 4 / キャンセル待ち 1 / キャンセル 0" in text
    assert "見学: 確定 1" in text
    assert "初心者 2 / 経験者 2" in text
    assert "出席: 1" in text and "感想: 1件 (平均 4.0)" in text
    day = bot.store.workbook().event("E2").date
    assert bot.say(f"集計 {day.month}/{day.day}", user=ADMIN)[0] == text  # or by its date
    assert bot.say(f"参加者 {day.month}月{day.day}日", user=ADMIN) == bot.say("参加者 E2", user=ADMIN)


def test_attendees_lists_everyone_in_order(bot: BotHarness) -> None:
    users = _seed(bot, 400)
    (listing,) = bot.say("参加者 E2", user=ADMIN)
    lines = listing.splitlines()
    assert "登録 400名" in lines[0] and len(lines) == 401
    assert [line.split()[1] for line in lines[1:]] == [u[-6:] for u in users]


def test_attendees_reach_line_within_its_limits(sim: Sim) -> None:  # noqa: F811
    store = sim.app.extensions["seminar_bot"].services.store
    for n in range(400):
        store.add("registrations", {
            "id": f"R{n:06d}", "created_at": f"2026-11-01T10:00:00.{n:03d}+09:00",
            "event_id": "E2", "user_id": f"U{10_000 + n:032x}", "role": "participant",
            "level": "beginner", "status": "confirmed"})
    assert sim.send(ORGANIZER, kind="text", text="参加者 E2") == 200
    (reply,) = [e["payload"] for e in sim.history(ORGANIZER) if e["kind"] == "reply"]
    assert 2 <= len(reply) <= 5 and "登録 400名" in reply[0]["text"]
    assert all(utf16_len(x["text"]) <= MAX_TEXT_UTF16 for x in reply)
    assert sim.platform.violations == []


def test_remind_pushes_confirmed_people_and_tells_the_waitlist(bot: BotHarness) -> None:
    for user in USERS[:5]:
        _register(bot, user)
    assert "リマインドを5名" in bot.say("リマインド E2", user=ADMIN)[0]
    assert "事前準備" in bot.line.received(USERS[0])[0]
    assert "キャンセル待ち(1番目)" in bot.line.received(USERS[4])[0]


def test_announce_reaches_everyone_registered(bot: BotHarness) -> None:
    for user in USERS[:5]:
        _register(bot, user)
    bot.say("お知らせ E2 会場が5階に変わりました", user=ADMIN)
    for user in USERS[:5]:
        assert "会場が5階に変わりました" in bot.line.received(user)[-1]


def test_every_push_is_recorded_in_the_deliveries_sheet(bot: BotHarness) -> None:
    for user in USERS[:3]:
        _register(bot, user)
    bot.say("お知らせ E2 持ち物の追加", user=ADMIN)
    rows = _sheet(bot, "deliveries")
    assert sorted(r["user_id"] for r in rows) == sorted(USERS[:3])
    assert {r["kind"] for r in rows} == {"announcement"} and rows[0]["created_at"]


def test_rooms_never_mix_levels_and_each_person_is_told(bot: BotHarness) -> None:
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["events"]["H3"], wb["events"]["I3"] = 20, 5
    wb.save(bot.settings.workbook_path)
    bot.store.reload()
    levels = ["初心者", "初心者", "初心者", "経験者", "経験者"]
    for user, level in zip(USERS, levels, strict=False):
        _register(bot, user, "参加", level)
    _register(bot, USERS[5], "見学", "初心者")
    text = bot.say("部屋割り E2 2", user=ADMIN)[0]
    assert "初心者1" in text and "経験者1" in text
    rows = {r["user_id"]: r["room"] for r in _sheet(bot, "registrations")}
    assert all(rows[u].startswith("初心者") for u in USERS[:3])
    assert all(rows[u].startswith("経験者") for u in USERS[3:5])
    assert rows[USERS[5]]
    assert all("あなたの部屋" in bot.line.received(u)[-1] for u in USERS)
    sent = len(bot.line.pushes) + len(bot.line.multicasts)
    bot.say("部屋割り E2 2", user=ADMIN)
    assert len(bot.line.pushes) + len(bot.line.multicasts) == sent  # same rooms: nobody re-told


def _four_and_an_observer(bot: BotHarness) -> dict[str, str]:
    """Two beginners, two experienced, one observer in rooms of two; user -> room."""
    for user, level in zip(USERS[:4], ["初心者", "初心者", "経験者", "経験者"], strict=True):
        _register(bot, user, "参加", level)
    _register(bot, USERS[4], "見学", "初心者")
    bot.say("部屋割り E2 2", user=ADMIN)
    return {r["user_id"]: r["room"] for r in _sheet(bot, "registrations")}


def test_rooms_never_exceed_the_size_asked_observers_included(bot: BotHarness) -> None:
    plan = _four_and_an_observer(bot)
    text = bot.line.last_texts()[0]
    assert "1部屋2名まで" in text and "3名" not in text
    assert all(plan[u] for u in USERS[:5])
    sizes = Counter(plan[u] for u in USERS[:5])
    assert max(sizes.values()) <= 2 and len(sizes) == 3
    assert plan[USERS[0]] == plan[USERS[1]] and plan[USERS[2]] == plan[USERS[3]]
    assert plan[USERS[0]] != plan[USERS[2]]


def test_rooms_assign_opens_a_room_when_the_others_are_full() -> None:
    regs = [Registration(f"R{n}", f"2026-01-01T00:00:0{n}", "E2", f"U{n}", "", role, level,
                         "confirmed")
            for n, (role, level) in enumerate([("participant", "beginner")] * 2
                                              + [("participant", "experienced")] * 2
                                              + [("observer", "beginner")] * 3)]
    plan = rooms.assign(regs, "E2", 2)
    assert max(Counter(plan.values()).values()) <= 2
    assert plan["R0"] == plan["R1"] != plan["R2"] == plan["R3"]
    assert {plan["R4"], plan["R5"], plan["R6"]}.isdisjoint({plan["R0"], plan["R2"]})


def test_each_person_is_told_their_room_with_its_members(bot: BotHarness) -> None:
    plan = _four_and_an_observer(bot)
    for user in USERS[:5]:
        notice = bot.line.received(user)[-1]
        assert f"「{plan[user]}」" in notice
        mates = [u for u in USERS[:5] if plan[u] == plan[user]]
        assert all(bot.line.display_name(u) in notice for u in mates)
        others = [u for u in USERS[:5] if plan[u] != plan[user]]
        assert not any(bot.line.display_name(u) in notice for u in others)


def test_a_room_notice_names_people_without_a_display_name_by_a_short_id(
        bot: BotHarness) -> None:
    users = _seed(bot, 2)
    bot.say("部屋割り E2 2", user=ADMIN)
    notice = bot.line.received(users[0])[-1]
    assert "メンバー(2名)" in notice and all(u[-4:] in notice for u in users)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["participant", "observer"]),
                          st.sampled_from(["beginner", "experienced"])), max_size=60),
       st.integers(min_value=1, max_value=8))
def test_room_assignment_properties(mix: list[tuple[str, str]], size: int) -> None:
    regs = [Registration(f"R{n:03d}", f"2026-01-01T00:00:{n % 60:02d}", "E2", f"U{n}", "",
                         role, level, "confirmed") for n, (role, level) in enumerate(mix)]
    plan = rooms.assign(regs, "E2", size)
    assert plan == rooms.assign(list(reversed(regs)), "E2", size)  # deterministic
    assert set(plan) == {r.id for r in regs}
    for label in rooms.LEVEL_ROOM.values():
        sizes = [sum(1 for r in regs if r.role == "participant" and plan[r.id] == name)
                 for name in set(plan.values()) if name.startswith(label)]
        assert not sizes or max(sizes) - min(sizes) <= 1 and max(sizes) <= size
    assert all(n <= size for n in Counter(plan.values()).values())  # observers included
    for reg in regs:
        if reg.role == "participant":
            assert plan[reg.id].startswith(rooms.LEVEL_ROOM[reg.level])


def test_checkin_records_the_time_once_within_the_window(bot: BotHarness) -> None:
    _register(bot, USERS[0])
    bot.clock.now = dt.datetime(2026, 12, 29, 13, 20, tzinfo=JST)
    assert "受け付けているイベントはありません" in bot.say("出席", user=USERS[0])[0]
    bot.clock.now = dt.datetime(2026, 12, 29, 13, 35, tzinfo=JST)
    assert "記録しました(13:35)" in bot.say("checkin", user=USERS[0])[0]
    bot.clock.now += dt.timedelta(minutes=10)
    assert "記録済みです(13:35)" in bot.say("出席", user=USERS[0])[0]
    assert [r["user_id"] for r in _sheet(bot, "attendance")] == [USERS[0]]


@pytest.mark.parametrize("status,says", [("waitlisted", "キャンセル待ち(1番目)"),
                                         ("applied", "抽選待ち"), ("offered", "繰り上げ")])
def test_only_confirmed_people_check_in(bot: BotHarness, status: str, says: str) -> None:
    (waiting,) = _seed(bot, 1, status=status)
    (confirmed,) = _seed_more(bot, "R900000")
    bot.clock.now = dt.datetime(2026, 12, 29, 13, 35, tzinfo=JST)
    told = bot.say("出席", user=waiting)[0]
    assert f"登録は{says}" in told and "出席は記録できません" in told
    assert "記録しました" in bot.say("出席", user=confirmed)[0]
    assert [r["user_id"] for r in _sheet(bot, "attendance")] == [confirmed]
    assert "出席: 1" in bot.say("集計 E2", user=ADMIN)[0]


def _seed_more(bot: BotHarness, row_id: str) -> list[str]:
    user = "U" + "c" * 32
    bot.store.add("registrations", {
        "id": row_id, "created_at": "2026-11-02T10:00:00.000+09:00", "event_id": "E2",
        "user_id": user, "role": "participant", "level": "beginner", "status": "confirmed"})
    return [user]


def _remind(bot: BotHarness) -> None:
    """One round, as the scheduler or cron runs it."""
    scheduler.tick(bot.app.extensions["seminar_bot"].services)


def test_reminders_follow_the_three_offsets_with_a_fake_clock(bot: BotHarness) -> None:
    for user in USERS[:5]:
        _register(bot, user)
    start = dt.datetime(2026, 12, 29, 14, 0, tzinfo=JST)
    for offset, marker in ((dt.timedelta(days=7), "キャンセル E2"), (dt.timedelta(days=1), None),
                           (dt.timedelta(hours=2), None)):
        bot.clock.now = start - offset - dt.timedelta(minutes=1)
        before = list(bot.line.received(USERS[0]))
        _remind(bot)
        assert bot.line.received(USERS[0]) == before  # not yet due
        bot.clock.now += dt.timedelta(minutes=2)
        _remind(bot)
        _remind(bot)  # a second run sends nothing new
        got = bot.line.received(USERS[0])[len(before):]
        assert len(got) == 1 and "【リマインド】" in got[0] and "事前準備" in got[0]
        assert (marker in got[0]) if marker else "キャンセル E2" not in got[0]
        assert len(bot.line.received(USERS[4])) == len(bot.line.received(USERS[0]))
    assert all("キャンセル待ち" in t for t in bot.line.received(USERS[4]))


def test_after_the_event_feedback_request_then_the_recording(bot: BotHarness) -> None:
    _register(bot, USERS[0])
    bot.clock.now = dt.datetime(2026, 12, 29, 16, 30, tzinfo=JST)
    _remind(bot)
    assert "感想をお聞かせください" in bot.line.received(USERS[0])[-1]
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["events"]["N3"] = "https://example.org/recording/e2"
    wb.save(bot.settings.workbook_path)
    bot.store.reload()
    _remind(bot)
    _remind(bot)
    assert bot.line.received(USERS[0])[-1].endswith("https://example.org/recording/e2")
    assert len(bot.line.received(USERS[0])) == 2


def test_1200_registrants_get_three_multicasts_with_distinct_retry_keys(bot: BotHarness) -> None:
    _seed(bot, 1200)
    bot.store.drain(seconds=10)
    bot.store.reload()
    bot.clock.now = dt.datetime(2026, 12, 28, 14, 30, tzinfo=JST)  # within a day of the start
    _remind(bot)
    calls = bot.line.multicasts
    assert [len(to) for to, _, _ in calls] == [500, 500, 200]
    assert len({key for _, _, key in calls}) == 3


def test_a_crash_in_the_middle_of_a_multicast_leaves_no_gap_and_no_duplicate(
        bot: BotHarness) -> None:
    users = _seed(bot, 1200)
    bot.clock.now = dt.datetime(2026, 12, 28, 14, 30, tzinfo=JST)
    bot.line.fail_on_call = 2  # LINE takes the second chunk, then the process dies
    deliveries = bot.app.extensions["seminar_bot"].services.deliveries
    deliveries.deliver(next(iter(_due(bot))))
    with pytest.raises(RuntimeError):
        deliveries.work()
    state = bot.app.extensions["seminar_bot"].services.state
    state.clock = lambda: 10**10  # the dead sender's lease has run out
    _remind(bot)
    for user in users:
        assert len(bot.line.received(user)) == 1, user


def _due(bot: BotHarness):
    from linebot_app.features import reminders

    services = bot.app.extensions["seminar_bot"].services
    return reminders.due(services.store.workbook(), services.store.registrations(),
                         services.now())


def test_two_reminder_runs_at_the_same_moment_send_each_message_once(bot: BotHarness) -> None:
    users = _seed(bot, 600)
    bot.clock.now = dt.datetime(2026, 12, 28, 14, 30, tzinfo=JST)
    runs = [threading.Thread(target=_remind, args=(bot,)) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=30)
    assert all(len(bot.line.received(u)) == 1 for u in users)


def test_tasks_remind_needs_the_cron_header_or_token(bot: BotHarness) -> None:
    assert bot.client.post("/tasks/remind").status_code == 403


def test_checkin_works_in_a_group_chat_too(bot: BotHarness) -> None:
    _register(bot, USERS[0])
    bot.clock.now = dt.datetime(2026, 12, 29, 14, 5, tzinfo=JST)
    assert "記録しました" in bot.say("出席", user=USERS[0], chat="group")[0]
    assert "受け付けているイベントはありません" in bot.say("checkin", user=USERS[1], chat="group")[0]


def _feedback(bot: BotHarness, user: str, rating: str, event: str = "E1") -> None:
    """One survey answer after the event: the rating, three short texts, then 送信."""
    bot.clock.now = max(bot.clock.now, dt.datetime(2026, 12, 29, 16, 30, tzinfo=JST))
    bot.say(f"感想 {event}", user=user)
    for answer in (rating, f"感想{user[-3:]}", "使い道", "課題", "送信"):
        bot.say(answer, user=user)


def test_export_keeps_feedback_of_people_without_a_registration(bot: BotHarness,
                                                                tmp_path) -> None:
    bot.setting("feedback_audience", "anyone")
    _feedback(bot, USERS[0], "4")
    _feedback(bot, USERS[1], "5")
    bot.store.flush()
    regs, feedback = collect(bot.store, "E1")
    assert regs == [] and len(feedback) == 2
    out = tmp_path / "e1.csv"
    write_csv(out, regs, feedback)
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert sorted((r["user_id"], r["rating"]) for r in rows) == [(USERS[0], "4"), (USERS[1], "5")]
    assert rows[0]["impression"].startswith("感想")


def test_export_csv_shows_each_answer_once_registered_or_not(bot: BotHarness,
                                                             tmp_path) -> None:
    bot.setting("feedback_audience", "anyone")
    _register(bot, USERS[0])
    _feedback(bot, USERS[0], "5", "E2")
    _feedback(bot, USERS[1], "2", "E2")
    out = tmp_path / "e2.csv"
    write_csv(out, *collect(bot.store, "E2"))
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert [(r["user_id"], r["rating"]) for r in rows] == [(USERS[0], "5"), (USERS[1], "2")]
    assert rows[0]["id"] and rows[0]["status"] == "confirmed" and not rows[1]["id"]


def test_export_xlsx_stores_ratings_as_numbers(bot: BotHarness, tmp_path) -> None:
    bot.setting("feedback_audience", "anyone")
    _register(bot, USERS[0])
    _feedback(bot, USERS[0], "4", "E2")
    _feedback(bot, USERS[1], "5", "E2")
    bot.store.drain(seconds=5)
    bot.store.reload()
    out = tmp_path / "e2.xlsx"
    write_xlsx(out, *collect(bot.store, "E2"))
    wb = openpyxl.load_workbook(out)
    ratings = [c for c in next(wb["feedback"].iter_cols(min_col=4, max_col=4, min_row=2))]
    assert sorted(c.value for c in ratings) == [4, 5] and {c.data_type for c in ratings} == {"n"}
    reg_rating = wb["registrations"]["J2"]
    assert reg_rating.value == 4 and reg_rating.data_type == "n"


def test_export_command_writes_feedback_without_registrations(bot: BotHarness,
                                                              tmp_path) -> None:
    bot.setting("feedback_audience", "anyone")
    _feedback(bot, USERS[0], "4")
    _feedback(bot, USERS[1], "5")
    bot.store.drain(seconds=5)
    out = tmp_path / "e1.csv"
    result = run_export(bot.settings, tmp_path / "cli-var", "E1", out)
    assert result.returncode == 0, result.stderr
    assert "感想 2 件" in result.stdout
    assert len(out.read_text(encoding="utf-8-sig").splitlines()) == 3


def cycle(bots: list[BotHarness], user: str, times: int) -> list[str]:
    """Register for E2 and cancel, in turn, `times` changes in all, over the bots in turn; the
    first line of each reply."""
    said = []
    for n in range(times):
        text = "参加登録 E2 参加 初心者" if n % 2 == 0 else "キャンセル E2"
        said.append(bots[n % len(bots)].say(text, user=user)[0])
    return said


def test_one_person_cycling_registrations_is_paused_with_no_row(bot: BotHarness) -> None:
    bot.consent(USERS[0])
    bot.consent(USERS[1])
    now = [1_800_000_000.0]
    bot.store.outbox.clock = lambda: now[0]
    said = cycle([bot], USERS[0], 10)
    assert all("少しの間止めています" not in s for s in said)
    for _ in range(2):  # the 11th and 12th: paused
        assert "少しの間止めています" in bot.say("参加登録 E2 参加 初心者", user=USERS[0])[0]
    rows = [r for r in bot.store.registrations() if r.user_id == USERS[0]]
    assert len(rows) == 5 and all(r.status == "cancelled" for r in rows)  # no row for them
    assert "参加確定" in bot.say("参加登録 E2 参加 初心者", user=USERS[1])[0]  # others go on
    now[0] += 601  # ten minutes later
    assert "参加確定" in bot.say("参加登録 E2 参加 初心者", user=USERS[0])[0]


def test_a_cancellation_is_never_paused(bot: BotHarness, monkeypatch) -> None:
    from linebot_app.features import registration

    monkeypatch.setattr(registration, "CHANGES_ALLOWED", 1)
    bot.consent(USERS[0])
    assert "参加確定" in bot.say("参加登録 E2 参加 初心者", user=USERS[0])[0]  # the one change
    assert "キャンセルしました" in bot.say("キャンセル E2", user=USERS[0])[0]  # still allowed
    assert "少しの間止めています" in bot.say("参加登録 E2 参加 初心者", user=USERS[0])[0]


def test_organizers_are_never_paused(bot: BotHarness) -> None:
    bot.consent(ADMIN)
    said = cycle([bot], ADMIN, 14)
    assert not any("止めています" in s for s in said)
