"""SHEETS_BACKEND=google against the emulator: cached reads, batched writes, quotas, faults."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace

import gspread
import pytest
import requests

from linebot_app.config import Settings
from storage.backend import BackendError
from storage.local.outbox import SqliteOutbox
from storage.sheets.google import EmulatorCredentials, gspread_client, open_backend
from storage.sheets.sample import FAQ, SIM_ORGANIZER_ID
from tests.conftest import (
    ADMIN,
    ROOT,
    Emu,
    build_harness,
    eventually,
    google_env,
    make_settings,
    make_store,
    text_event,
)

U1 = "U" + "1" * 32

SQLITE_ON_CLOUD = {"STATE_BACKEND": "sqlite", "ALLOW_EPHEMERAL_STATE": "on"}  # state on the instance's disk


def _reg(n: int) -> dict:
    return {"id": f"R{n:04d}", "event_id": "E2", "user_id": f"U{n:032x}", "role": "participant",
            "level": "beginner", "status": "confirmed"}


def _google_harness(tmp_path, emu: Emu, **env: str):
    harness = build_harness(tmp_path, **google_env(emu, **env))
    harness.store.reload()
    return harness


def test_every_call_has_gspreads_own_timeout(tmp_path, emu: Emu) -> None:
    settings = make_settings(tmp_path, **google_env(emu))
    backend = open_backend(settings.google, lambda kind: True)
    assert isinstance(backend.http, gspread.HTTPClient) and backend.http.timeout == 2.0
    production = gspread_client(EmulatorCredentials("x"), replace(settings.google, emulator_host=""))
    assert type(production.http_client) is gspread.HTTPClient
    assert production.http_client.timeout == 2.0 == settings.google.timeout


def test_a_hanging_sheets_api_gives_up_at_the_timeout(tmp_path, emu: Emu) -> None:
    settings = make_settings(tmp_path, **google_env(emu, SHEETS_TIMEOUT_SECONDS="1"))
    backend = open_backend(settings.google, lambda kind: True)
    emu.faults(hang_for=30, hang_seconds=3)
    started = time.monotonic()
    with pytest.raises(BackendError):
        backend.read()
    assert time.monotonic() - started < 2.5


def test_appends_are_raw_insert_rows_and_batched(tmp_path, emu: Emu) -> None:
    store = make_store(make_settings(tmp_path, **google_env(emu)))
    for n in range(30):
        store.add("registrations", _reg(n))
    store.flush()
    (append,) = [e for e in emu.log("write") if e["path"].endswith(":append")]
    assert append["args"]["valueInputOption"] == "RAW"
    assert append["args"]["insertDataOption"] == "INSERT_ROWS"
    assert append["rows"] == 30
    assert len(emu.rows("registrations")) == 30


def test_at_most_one_append_per_worksheet_per_second(tmp_path, emu: Emu) -> None:
    settings = make_settings(tmp_path, **google_env(emu))
    store = make_store(settings)
    store.flush_interval = 1.0
    stamps = []
    for n in range(6):
        store.add("registrations", _reg(n))
        store.flush()
        time.sleep(0.3)
    stamps = [e["at"] for e in emu.log("write") if e["path"].endswith(":append")]
    assert len(stamps) >= 2
    assert all(b - a >= 0.95 for a, b in zip(stamps, stamps[1:], strict=False))


def test_a_thousand_queries_in_a_minute_cost_at_most_two_reads(tmp_path, emu: Emu) -> None:
    harness = build_harness(tmp_path, **google_env(emu))
    requests.delete(f"{emu.url}/_emulator/log", timeout=10)
    words = ["イベント", "予定", "予定 E1", "ごみ", "図書館", "ヘルプ", "詳細 E2", "予定 4/30"]
    for n in range(1000):
        assert harness.post(text_event(words[n % len(words)])).status_code == 200
    assert len(harness.line.replies) == 1000
    assert len(emu.log("read")) <= 2


def test_a_sheets_error_keeps_the_last_good_copy_and_warns(tmp_path, emu: Emu, caplog) -> None:
    harness = _google_harness(tmp_path, emu)
    emu.faults(error_seconds=30)
    with caplog.at_level(logging.WARNING):
        harness.store.reload()
    assert "運営自己紹介など" in harness.say("予定 E1")[0]
    assert any("last good copy" in r.getMessage() for r in caplog.records)


def test_reload_command_refreshes_the_cache(tmp_path, emu: Emu) -> None:
    harness = _google_harness(tmp_path, emu)
    emu.edit("faq", "C2", "新しい回答です")
    assert "新しい回答" not in harness.say("ごみ")[0]
    assert "読み込み直しました" in harness.say("再読込", user=ADMIN)[0]
    assert "新しい回答" in harness.say("ごみ")[0]


def test_users_are_answered_at_once_while_rows_wait(tmp_path, emu: Emu) -> None:
    harness = _google_harness(tmp_path, emu)
    emu.faults(error_seconds=60)
    harness.consent(U1)
    assert "参加確定" in harness.say("参加登録 E2 参加 初心者", user=U1)[0]
    assert harness.store.outbox.has_pending()
    assert emu.rows("registrations") == []


def test_backoff_grows_with_jitter_and_is_capped(tmp_path, emu: Emu, caplog) -> None:
    settings = make_settings(tmp_path, **google_env(emu))
    store = make_store(settings)
    store.backoff_cap = 64.0
    store.add("registrations", _reg(1))
    emu.faults(error_seconds=600)
    for _ in range(9):
        with caplog.at_level(logging.WARNING, logger="storage.flusher"):
            assert store.flush() == 0
        assert not store.outbox.take_lease(1)  # the wait it announced holds the next flush back
        store.outbox.release_lease(0)
    waits = [r.args[0] for r in caplog.records if "after a backend error" in r.msg]
    assert len(waits) == 9
    assert waits[0] <= 2.0 and max(waits) <= 64.0 and waits[-1] >= 32.0
    assert len(set(waits)) > 1  # jitter


def test_tasks_flush_needs_the_cron_header_or_the_token(tmp_path, emu: Emu) -> None:
    harness = _google_harness(tmp_path, emu, TASKS_TOKEN="a-test-token", GAE_ENV="standard",
                               **SQLITE_ON_CLOUD)
    harness.store.add("registrations", _reg(1))
    client = harness.client
    assert client.post("/tasks/flush").status_code == 403
    assert client.post("/tasks/flush", headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = client.post("/tasks/flush", headers={"X-Appengine-Cron": "true"})  # on App Engine
    assert ok.status_code == 200 and ok.json["pending"] == 0
    assert len(emu.rows("registrations")) == 1
    harness.store.add("registrations", _reg(2))
    harness.store.outbox.release_lease(0)  # no flush interval to wait for
    ok = client.post("/tasks/flush", headers={"Authorization": "Bearer a-test-token"})
    assert ok.status_code == 200 and ok.json["pending"] == 0
    assert [r["id"] for r in emu.rows("registrations")] == ["R0001", "R0002"]


def test_an_append_whose_answer_is_lost_leaves_no_duplicate(tmp_path, emu: Emu) -> None:
    store = make_store(make_settings(tmp_path, **google_env(emu, SHEETS_TIMEOUT_SECONDS="1")))
    for n in range(3):
        store.add("registrations", _reg(n))
    emu.faults(lose_appends=1, lose_hang=2.5)
    assert store.flush() == 0  # timed out: the outcome is unknown
    lost_at = time.time()
    assert len(emu.rows("registrations")) == 3  # ...but the rows did land
    store.outbox.release_lease(0)
    assert store.flush() == 3
    assert [r["id"] for r in emu.rows("registrations")] == ["R0000", "R0001", "R0002"]

    def appends() -> list[dict]:
        return [e for e in emu.log("write") if e["path"].endswith(":append")]

    # the emulator logs the lost call (stamped with its start) once its hang is over
    eventually(lambda: any(e["at"] < lost_at for e in appends()), timeout=10, every=0.1)
    assert len(appends()) == 1


def test_sustained_429s_lose_and_duplicate_nothing(tmp_path, emu: Emu) -> None:
    store = make_store(make_settings(tmp_path, **google_env(emu, SHEETS_QUOTA_PER_MINUTE="1000")))
    emu.quota(write=2, minute=1.0)
    store.backoff_cap = 0.3
    for n in range(40):
        store.add("registrations", _reg(n))
        store.flush()

    def flushed() -> bool:
        store.flush()
        return not store.outbox.has_pending()

    eventually(flushed, timeout=30, every=0.05)
    ids = [r["id"] for r in emu.rows("registrations")]
    assert sorted(ids) == [f"R{n:04d}" for n in range(40)]
    assert any(e["status"] == 429 for e in emu.log("write"))


def test_503_for_two_emulated_minutes_then_every_row_lands(tmp_path, emu: Emu) -> None:
    minute = 1.0  # one emulated minute is one second here
    emu.quota(minute=minute)
    harness = _google_harness(tmp_path, emu)
    harness.store.backoff_cap = 0.5
    emu.faults(error_seconds=2 * minute)
    users = [f"U{n:032x}" for n in range(1, 11)]
    started = time.monotonic()
    for user in users:
        harness.consent(user)
        assert "受け付けました" in harness.say("参加登録 E2 見学 経験者", user=user)[0] or \
            "参加確定" in harness.line.last_texts()[0]
        harness.store.flush()
    assert time.monotonic() - started < 2.0  # users were answered throughout
    assert harness.store.drain(seconds=15)
    assert sorted(r["user_id"] for r in emu.rows("registrations")) == users
    assert any(e["status"] == 503 for e in emu.log())


def test_hostile_text_from_the_conversation_is_stored_literally(tmp_path, emu: Emu) -> None:
    harness = _google_harness(tmp_path, emu)
    harness.registered(U1)
    harness.say("感想 E1", user=U1)
    for text in ("5", "=IMPORTXML(\"http://x\",\"//a\")", "@メモ", "\r改行から", "送信"):
        harness.say(text, user=U1)
    harness.store.drain(seconds=5)
    (row,) = emu.rows("feedback")
    assert row["impression"] == "=IMPORTXML(\"http://x\",\"//a\")"
    assert row["use_cases"] == "@メモ" and row["challenges"] == "\r改行から"
    assert emu.formulas("feedback") == []


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "linebot_app", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_init_sheet_from_the_workbook_then_a_registration_lands(tmp_path, emu: Emu) -> None:
    settings = make_settings(tmp_path)
    from storage.sheets.sample import create_sample_workbook

    create_sample_workbook(settings.workbook_path)
    env = {**google_env(emu), "DATA_DIR": str(tmp_path / "var")}
    env.pop("SHEETS_BACKEND")
    result = _cli("init-sheet", "--from", str(settings.workbook_path), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created worksheet: events" in result.stdout and "froze" in result.stdout
    assert len(emu.rows("faq")) == len(FAQ)
    again = _cli("init-sheet", "--from", str(settings.workbook_path), env=env)
    assert again.returncode == 0 and "created worksheet" not in again.stdout
    assert "wrote the header row" not in again.stdout  # deliveries' header too is left alone
    assert len(emu.rows("faq")) == len(FAQ)  # existing data was not touched
    assert emu.frozen_rows("events") == 1
    # the sample's organizer (the simulator's) is never copied: the organizer is asked instead
    copied = {row["key"]: row["value"] for row in emu.rows("settings")}
    assert "admin_user_ids" not in copied and copied["city_name"] == "みなと市 (架空)"
    assert SIM_ORGANIZER_ID not in json.dumps(emu.rows("settings"))
    assert "! settings シートの admin_user_ids が空です" in result.stdout and "--admin U" in result.stdout


def test_init_sheet_takes_the_organizers_from_admin(tmp_path, emu: Emu) -> None:
    settings = make_settings(tmp_path)
    env = {**google_env(emu, GOOGLE_SPREADSHEET_ID="FRESH"), "DATA_DIR": str(tmp_path / "var")}
    emu.create("FRESH")
    organizer = "U" + "1234abcd" * 4
    bad = _cli("init-sheet", "--admin", "U0000", env=env)
    assert bad.returncode == 1 and "--admin" in bad.stdout and "U0000" in bad.stdout
    result = _cli("init-sheet", "--from", str(settings.workbook_path), "--admin", organizer,
                  env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["key"]: row["value"] for row in emu.rows("settings", "FRESH")}
    assert rows["admin_user_ids"] == organizer and "空です" not in result.stdout


def test_check_reports_missing_credentials(tmp_path) -> None:
    env = {"SHEETS_BACKEND": "google", "GOOGLE_SPREADSHEET_ID": "X", "DATA_DIR": str(tmp_path),
           "HOME": str(tmp_path)}
    clean = {k: v for k, v in os.environ.items()
             if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "SHEETS_EMULATOR_HOST")}
    result = subprocess.run([sys.executable, "-m", "linebot_app", "check"], cwd=ROOT,
                            env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "認証情報がありません" in result.stdout


def test_check_names_the_account_a_sheet_is_not_shared_with(tmp_path, emu: Emu) -> None:
    emu.create("PRIVATE", shared_with=["someone@example.org"])
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "client_email": "bot@proj.example"}))
    env = {**google_env(emu, GOOGLE_SPREADSHEET_ID="PRIVATE"),
           "GOOGLE_APPLICATION_CREDENTIALS": str(key), "DATA_DIR": str(tmp_path)}
    result = _cli("check", env=env)
    assert result.returncode == 1 and "bot@proj.example" in result.stdout


def test_check_reports_missing_sheets_and_misspelled_headers(tmp_path, emu: Emu) -> None:
    emu.create("TYPO", sheets={"events": [["id", "titel", "date"]], "faq": [["keywords"]]})
    env = {**google_env(emu, GOOGLE_SPREADSHEET_ID="TYPO"), "DATA_DIR": str(tmp_path)}
    result = _cli("check", env=env)
    assert result.returncode == 1
    assert "settings" in result.stdout and "シートがありません" in result.stdout
    assert "'title' の誤り" in result.stdout


def test_google_settings_need_a_spreadsheet_id() -> None:
    with pytest.raises(Exception) as err:
        Settings.from_env({"SHEETS_BACKEND": "google"})
    assert "GOOGLE_SPREADSHEET_ID" in str(err.value)


def test_quota_limiter_is_shared_through_the_outbox(tmp_path) -> None:
    first, second = SqliteOutbox(tmp_path / "o.sqlite3"), SqliteOutbox(tmp_path / "o.sqlite3")
    taken = [first.take_quota("write", 3, 60) for _ in range(2)]
    taken += [second.take_quota("write", 3, 60) for _ in range(2)]
    assert taken == [True, True, True, False]
