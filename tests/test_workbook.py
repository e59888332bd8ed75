"""The embedded workbook: typed dates, bad rows, hot reload, office lock files, literal text."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
import time

import openpyxl
import pytest

from domain.dates import parse_date, parse_time, parse_time_range
from domain.schema import parse_workbook
from storage.local.outbox import SqliteOutbox
from storage.sheets.sample import create_sample_workbook
from storage.sheets.workbook import WorkbookBackend
from storage.store import Store
from tests.conftest import ROOT, BotHarness, build_harness, eventually

U1 = "U" + "1" * 32


@pytest.mark.parametrize("typed", [
    "2020-04-30", "2020/4/30", "2020年4月30日", "令和2年4月30日", "２０２０／４／３０",
    "令和２年４月３０日", "2020/04/30(木)", "R2.4.30", dt.date(2020, 4, 30),
    dt.datetime(2020, 4, 30, 0, 0), 43951,
])
def test_typed_dates_are_read(typed: object) -> None:
    assert parse_date(typed) == dt.date(2020, 4, 30)


def test_first_year_of_an_era_is_read() -> None:
    assert parse_date("令和元年5月1日") == dt.date(2019, 5, 1)


@pytest.mark.parametrize("typed", ["来週", "", "2020-13-01", "令和2年", "abc"])
def test_unreadable_dates_raise(typed: str) -> None:
    with pytest.raises(ValueError):
        parse_date(typed)


def test_a_time_range_typed_into_start_is_split() -> None:
    assert parse_time_range("19:00〜20:30") == (dt.time(19), dt.time(20, 30))
    assert parse_time_range("１９：００～２０：３０") == (dt.time(19), dt.time(20, 30))
    assert parse_time("19時半") == dt.time(19, 30)
    assert parse_time(dt.time(19, 0)) == dt.time(19)


def _workbook_with_bad_rows(path) -> None:
    create_sample_workbook(path, dt.date(2026, 12, 1))
    wb = openpyxl.load_workbook(path)
    wb["events"].append(["E9", "壊れた行", "来週", "19:00"])
    wb["events"].append(["E10", "定員が変", "2027-01-01", "19:00", "", "", "", "たくさん"])
    wb["schedule"].append(["E99", "10:00", "", "存在しないイベントの予定"])
    wb.save(path)


def test_bad_rows_are_skipped_and_the_rest_is_read(tmp_path) -> None:
    path = tmp_path / "wb.xlsx"
    _workbook_with_bad_rows(path)
    org = parse_workbook(WorkbookBackend(path).read())
    assert [e.id for e in org.events] == ["E1", "E2"]
    where = {(p.sheet, p.row, p.column) for p in org.problems}
    assert ("events", 4, "date") in where
    assert ("events", 5, "capacity") in where
    assert ("schedule", 11, "event_id") in where


def test_bot_keeps_answering_with_a_bad_row(tmp_path) -> None:
    harness = build_harness(tmp_path)
    _workbook_with_bad_rows(harness.settings.workbook_path)
    harness.store.reload()
    assert "Excelの調査票" in harness.say("予定")[0]


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "linebot_app", "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_check_reports_every_bad_row_and_exits_non_zero(tmp_path) -> None:
    path = tmp_path / "wb.xlsx"
    _workbook_with_bad_rows(path)
    env = {**os.environ, "WORKBOOK_PATH": str(path), "DATA_DIR": str(tmp_path / "var")}
    result = _check(env)
    assert result.returncode == 1
    assert "events!date 行4" in result.stdout and "来週" in result.stdout
    assert "events!capacity 行5" in result.stdout
    assert "schedule!event_id 行11" in result.stdout


def test_check_passes_on_the_sample_workbook(tmp_path) -> None:
    env = {**os.environ, "WORKBOOK_PATH": str(tmp_path / "wb.xlsx"),
           "DATA_DIR": str(tmp_path / "var")}
    result = _check(env)
    assert result.returncode == 0, result.stdout
    assert "✓" in result.stdout


def test_check_names_a_missing_credential(tmp_path) -> None:
    env = {**os.environ, "LINE_CHANNEL_SECRET": "x", "DATA_DIR": str(tmp_path)}
    env.pop("LINE_CHANNEL_ACCESS_TOKEN", None)
    result = _check(env)
    assert result.returncode == 1 and "LINE_CHANNEL_ACCESS_TOKEN" in result.stdout


def test_a_saved_edit_shows_within_ten_seconds_without_restart(bot: BotHarness) -> None:
    bot.store.check_seconds = 1.0
    assert "燃やすごみ" in bot.say("ごみ")[0]
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["faq"]["C2"] = "燃えるごみは火曜と金曜です。"
    wb.save(bot.settings.workbook_path)
    eventually(lambda: "火曜と金曜" in bot.say("ごみ")[0], timeout=10, every=0.5)


def test_the_first_question_after_a_save_gets_the_new_answer(bot: BotHarness) -> None:
    bot.store.check_seconds = 0.2
    assert "燃やすごみ" in bot.say("ごみ")[0]
    reloads: list[int] = []
    bot.store.on_reload.append(lambda org: reloads.append(len(org.faq)))
    stop = bot.store.start_flusher(every=0.2)  # as each gunicorn worker runs it
    try:
        wb = openpyxl.load_workbook(bot.settings.workbook_path)
        wb["faq"]["C2"] = "燃えるごみは火曜と金曜です。"
        wb.save(bot.settings.workbook_path)
        eventually(lambda: reloads, timeout=5, every=0.1)  # read with nobody asking
        assert "火曜と金曜" in bot.say("ごみ")[0]  # so the first question is answered anew
    finally:
        stop.set()


def test_no_workbook_read_while_the_cache_is_warm(bot: BotHarness) -> None:
    bot.store.check_seconds = 3600
    bot.say("イベント")
    reads = []
    backend = bot.store.backend
    original = backend.read
    backend.read = lambda: reads.append(1) or original()
    for _ in range(20):
        bot.say("予定 E1")
        bot.say("ごみ")
    assert reads == []


@pytest.mark.parametrize("lock_name", ["~$seminar.xlsx", ".~lock.seminar.xlsx#"])
def test_nothing_is_written_while_the_workbook_is_open(bot: BotHarness, lock_name: str) -> None:
    path = bot.settings.workbook_path
    lock = path.with_name(lock_name)
    lock.write_text("organizer")
    bot.consent(U1)
    assert "参加確定" in bot.say("参加登録 E2 参加 初心者", user=U1)[0]
    before = path.stat().st_mtime_ns
    assert bot.store.flush() == 0
    assert path.stat().st_mtime_ns == before
    assert bot.store.outbox.has_pending()
    lock.unlink()
    bot.store.outbox.release_lease(0)
    assert bot.store.flush() == 1
    ws = openpyxl.load_workbook(path)["registrations"]
    assert ws.max_row == 2


def test_organizer_edits_made_while_rows_wait_are_kept(bot: BotHarness) -> None:
    bot.consent(U1)
    bot.say("参加登録 E2 参加 初心者", user=U1)
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    wb["faq"]["C2"] = "編集された回答"
    wb["events"]["B3"] = "タイトル変更"
    wb.save(bot.settings.workbook_path)
    bot.store.flush()
    wb = openpyxl.load_workbook(bot.settings.workbook_path)
    assert wb["faq"]["C2"].value == "編集された回答"
    assert wb["events"]["B3"].value == "タイトル変更"
    assert wb["registrations"].max_row == 2


def test_user_text_is_stored_literally_never_as_a_formula(bot: BotHarness) -> None:
    bot.registered(U1)
    bot.say("感想 E1", user=U1)
    for answer in ("3", "=HYPERLINK(\"http://evil\",\"x\")", "+1+2", "@SUM(A1)", "送信"):
        bot.say(answer, user=U1)
    bot.store.flush()
    ws = openpyxl.load_workbook(bot.settings.workbook_path)["feedback"]
    cells = {c.value: c.data_type for c in ws[2]}
    assert cells["=HYPERLINK(\"http://evil\",\"x\")"] == "s"
    assert cells["+1+2"] == "s" and cells["@SUM(A1)"] == "s"
    assert not any(str(v).startswith("'") for v in cells)


def test_display_name_that_looks_like_a_formula_stays_text(bot: BotHarness) -> None:
    bot.line.display_name = lambda user_id: "=HYPERLINK(\"http://x\")"
    bot.consent(U1)
    bot.say("参加登録 E2 参加 初心者", user=U1)
    bot.store.flush()
    cell = openpyxl.load_workbook(bot.settings.workbook_path)["registrations"]["E2"]
    assert cell.value == "=HYPERLINK(\"http://x\")" and cell.data_type == "s"


@pytest.mark.parametrize("mode", [0o644, 0o664])
def test_a_save_keeps_the_workbook_mode_and_owner(bot: BotHarness, mode: int) -> None:
    path = bot.settings.workbook_path
    path.chmod(mode)
    owner = (path.stat().st_uid, path.stat().st_gid)
    if os.geteuid() == 0:
        os.chown(path, 1234, 5678)
        owner = (1234, 5678)
    bot.consent(U1)
    bot.say("参加登録 E2 参加 初心者", user=U1)
    assert bot.store.flush() == 1
    st = path.stat()
    assert openpyxl.load_workbook(path)["registrations"].max_row == 2  # really saved
    assert stat.S_IMODE(st.st_mode) == mode
    assert (st.st_uid, st.st_gid) == owner


def test_rows_survive_a_crash_before_the_flush(tmp_path) -> None:
    path = tmp_path / "wb.xlsx"
    create_sample_workbook(path)
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite3")
    outbox.add("registrations", {"id": "R1", "event_id": "E2", "user_id": U1,
                                 "role": "participant", "status": "confirmed"})
    del outbox  # the process dies here; a new one finds the row and writes it
    store = Store(WorkbookBackend(path), SqliteOutbox(tmp_path / "outbox.sqlite3"), flush_interval=0)
    assert store.flush() == 1
    assert [r.id for r in store.reload().registrations] == ["R1"]


def test_a_row_already_in_the_sheet_is_not_written_twice(tmp_path) -> None:
    path = tmp_path / "wb.xlsx"
    create_sample_workbook(path)
    store = Store(WorkbookBackend(path), SqliteOutbox(tmp_path / "o.sqlite3"), flush_interval=0)
    row = {"id": "R1", "event_id": "E2", "user_id": U1, "role": "participant",
           "status": "confirmed"}
    store.add("registrations", row)
    store.flush()
    store.add("registrations", row)  # as if the first save's outcome had been lost
    store.outbox.release_lease(0)
    store.flush()
    assert len(store.reload().registrations) == 1


def test_the_bots_own_save_is_not_read_back_but_an_organizers_is(tmp_path) -> None:
    """Reading and parsing a large workbook again after each of the bot's own saves is what
    made latency grow with rows; what the bot saved is in the outbox already."""
    from tests.conftest import make_settings, make_store

    now = [1_800_000_000.0]
    settings = make_settings(tmp_path)
    store = make_store(settings, clock=lambda: now[0])
    store.workbook()
    copies: list[object] = []
    store.on_reload.append(copies.append)
    store.add("registrations", {"id": "R1", "event_id": "E2", "user_id": "U" + "1" * 32,
                                "role": "participant", "level": "beginner",
                                "status": "confirmed"})
    assert store.flush() == 1
    now[0] += 60
    store.workbook()
    time.sleep(0.5)  # (a read would start on a thread of its own)
    assert copies == []  # not read again
    assert [r.id for r in store.registrations()] == ["R1"]  # and the row counts
    wb = openpyxl.load_workbook(settings.workbook_path)
    wb["faq"].append(["新しい", "新しい質問ですか?", "はい、新しい答えです。", "その他"])
    wb.save(settings.workbook_path)  # an organizer's save...
    store.add("registrations", {"id": "R2", "event_id": "E2", "user_id": "U" + "2" * 32,
                                "role": "participant", "level": "beginner",
                                "status": "confirmed"})
    assert store.flush() == 1  # ...then the bot's, before it read the organizer's
    now[0] += 60
    store.workbook()
    eventually(lambda: copies, timeout=10)
    assert any(f.question == "新しい質問ですか?" for f in store.workbook().faq)


def test_saves_of_a_slow_workbook_are_spaced_out_while_rows_land_at_once(tmp_path,
                                                                       monkeypatch) -> None:
    from storage import flusher
    from tests.conftest import make_settings, make_store

    monkeypatch.setattr(flusher, "SLOW_SAVE_SECONDS", 0.0)  # as if every save were slow
    store = make_store(make_settings(tmp_path))
    store.add("registrations", {"id": "R1", "event_id": "E2", "user_id": "U1", "status": "x"})
    started = time.monotonic()
    assert store.flush() == 1
    took = time.monotonic() - started
    store.add("registrations", {"id": "R2", "event_id": "E2", "user_id": "U2", "status": "x"})
    assert store.outbox.has_pending()  # taken at once...
    assert store.flush() == 0  # ...but the next save waits
    time.sleep(flusher.SPACING_FACTOR * took + 0.2)
    assert store.flush() == 1


def test_registrations_already_in_the_sheet_are_found_by_event_and_by_user(tmp_path) -> None:
    from domain.schema import COLUMNS
    from tests.conftest import make_settings, make_store

    settings = make_settings(tmp_path)
    wb = openpyxl.load_workbook(settings.workbook_path)
    for n, (event, user) in enumerate([("E1", "U1"), ("E2", "U1"), ("E2", "U2")]):
        row = {"id": f"R{n}", "created_at": "2026-11-01T10:00:00+09:00", "event_id": event,
               "user_id": "U" + user[-1] * 32, "role": "participant", "level": "beginner",
               "status": "confirmed"}
        wb["registrations"].append([row.get(c, "") for c in COLUMNS["registrations"]])
    wb.save(settings.workbook_path)
    store = make_store(settings)
    assert [r.id for r in store.registrations(user="U" + "1" * 32)] == ["R0", "R1"]
    assert [r.id for r in store.registrations(event="E2")] == ["R1", "R2"]
