"""50 users registering at the same instant for 10 seats: exactly 10 confirmed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import openpyxl
import pytest
import requests

from bench import procs
from linebot_app.simulator.platform import sign
from storage.local.outbox import SqliteOutbox
from storage.local.state import SqliteState
from storage.sheets.sample import create_sample_workbook
from storage.sheets.workbook import WorkbookBackend
from storage.store import Store
from tests.conftest import SECRET, TODAY, TOKEN, LiveServer, build_harness, text_event

USERS = [f"U{n:032x}" for n in range(1, 51)]


def _ten_seats(workbook: Path) -> None:
    if not workbook.exists():
        create_sample_workbook(workbook, TODAY)
    wb = openpyxl.load_workbook(workbook)
    wb["events"]["H3"] = 10
    wb.save(workbook)


def _burst(url: str) -> list[int]:
    """Post one signed registration per user, all released by one barrier."""
    barrier = threading.Barrier(len(USERS))
    statuses: list[int] = []

    def one(user: str) -> None:
        body = json.dumps({"destination": "U" + "f" * 32,
                           "events": [text_event("参加登録 E2 参加 初心者", user=user)]}).encode()
        headers = {"X-Line-Signature": sign(SECRET, body), "Content-Type": "application/json"}
        barrier.wait(timeout=30)
        statuses.append(requests.post(f"{url}/callback", data=body, headers=headers,
                                      timeout=60).status_code)

    threads = [threading.Thread(target=one, args=(u,)) for u in USERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    return statuses


def _statuses(workbook: Path, data_dir: Path) -> list[str]:
    store = Store(WorkbookBackend(workbook), SqliteOutbox(data_dir / "outbox.sqlite3"))
    return [r.status for r in store.registrations() if r.event_id == "E2"]


def test_threads_never_exceed_capacity(tmp_path) -> None:
    harness = build_harness(tmp_path)
    _ten_seats(harness.settings.workbook_path)
    harness.store.reload()
    for user in USERS:
        harness.consent(user)
    with LiveServer(harness.app) as server:
        assert _burst(server.url) == [200] * 50
    statuses = _statuses(harness.settings.workbook_path, harness.settings.data_dir)
    assert statuses.count("confirmed") == 10 and statuses.count("waitlisted") == 40


@pytest.mark.slow
def test_gunicorn_worker_processes_never_exceed_capacity(tmp_path) -> None:
    workbook, data_dir = tmp_path / "seminar.xlsx", tmp_path / "var"
    _ten_seats(workbook)
    state = SqliteState(data_dir / "bot.sqlite3")
    for user in USERS:
        state.give_consent(user)
    bot_port, sim_port = procs.free_port(), procs.free_port()
    sim = procs.simulator(sim_port, bot_port, SECRET, TOKEN, tmp_path / "sim.log")
    env = {"LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
           "LINE_API_BASE_URL": f"http://127.0.0.1:{sim_port}/simulator/line",
           "WORKBOOK_PATH": str(workbook), "DATA_DIR": str(data_dir)}
    bot = procs.gunicorn("linebot_app:create_app()", bot_port, env, tmp_path / "bot.log",
                         workers=3, threads=8)
    try:
        assert _burst(f"http://127.0.0.1:{bot_port}") == [200] * 50
    finally:
        procs.stop(bot)
        procs.stop(sim)
    statuses = _statuses(workbook, data_dir)
    assert statuses.count("confirmed") == 10 and statuses.count("waitlisted") == 40
    rows = list(openpyxl.load_workbook(workbook)["registrations"].iter_rows(values_only=True))
    assert len(rows) == 51  # header + 50: the workers' flushers wrote every row exactly once
