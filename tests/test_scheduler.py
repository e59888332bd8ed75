"""The bot's own scheduler: `serve` (make run) tells registrants of a change with no cron call;
SCHEDULER=off leaves the rounds to cron."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import openpyxl
import pytest
import requests

from bench import procs
from linebot_app.config import ConfigError, Settings
from linebot_app.simulator.platform import USERS
from tests.conftest import ROOT, eventually

STAFF = USERS[0].user_id


def _serve(tmp: Path, port: int, **env: str) -> procs.subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LINE_")}
    base.update({"PORT": str(port), "WORKBOOK_PATH": str(tmp / "seminar.xlsx"),
                 "DATA_DIR": str(tmp / "var"), **env})
    with (tmp / "serve.log").open("w") as log:
        proc = procs.subprocess.Popen([sys.executable, "-m", "linebot_app", "serve"], cwd=ROOT,
                                      env=base, stdout=log, stderr=procs.subprocess.STDOUT,
                                      start_new_session=True)
    procs.wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def _send(base: str, text: str) -> None:
    res = requests.post(f"{base}/simulator/api/send", json={"user": STAFF, "text": text},
                        timeout=10)
    assert res.json()["status"] == 200


def _bot_texts(base: str) -> list[str]:
    entries = requests.get(f"{base}/simulator/api/history", params={"user": STAFF},
                           timeout=10).json()["entries"]
    return [str(e["payload"]) for e in entries if e["direction"] == "bot"]


def _cancel_e2(workbook: Path) -> None:
    wb = openpyxl.load_workbook(workbook)
    ws = wb["events"]
    header = [c.value for c in ws[1]]
    row = next(r for r in ws.iter_rows(min_row=2) if r[0].value == "E2")
    row[header.index("status")].value = "cancelled"
    wb.save(workbook)


def _register_then_cancel(tmp: Path, base: str) -> float:
    """Register through the simulator, let a round pass, cancel E2 in the workbook."""
    _send(base, "参加登録 E2 参加 初心者")
    _send(base, "同意する")
    assert eventually(lambda: any("参加確定" in t for t in _bot_texts(base)), 10)
    time.sleep(2.5)  # a round sees the event as it was
    saved = time.monotonic()
    _cancel_e2(tmp / "seminar.xlsx")
    return saved


def _notices(base: str) -> list[str]:
    return [t for t in _bot_texts(base) if "【中止のお知らせ】" in t]


def _cancelled_deliveries(workbook: Path) -> list[str]:
    rows = list(openpyxl.load_workbook(workbook)["deliveries"].iter_rows(values_only=True))
    kind, user = rows[0].index("kind"), rows[0].index("user_id")
    return [r[user] for r in rows[1:] if r[kind] == "event-cancelled"]


@pytest.mark.slow
def test_serve_tells_a_registrant_of_a_cancellation_without_cron(tmp_path: Path) -> None:
    port = procs.free_port()
    proc = _serve(tmp_path, port, SCHEDULER_SECONDS="2")
    base = f"http://127.0.0.1:{port}"
    try:
        saved = _register_then_cancel(tmp_path, base)
        eventually(lambda: _notices(base), 30)
        took = time.monotonic() - saved
        time.sleep(4)  # two more rounds send nothing more
        assert len(_notices(base)) == 1
    finally:
        procs.stop(proc)
    assert took < 10  # two-second rounds here; one-minute rounds stay within 90 s
    assert _cancelled_deliveries(tmp_path / "seminar.xlsx") == [STAFF]


@pytest.mark.slow
def test_with_scheduler_off_only_cron_sends_the_notice(tmp_path: Path) -> None:
    port = procs.free_port()
    proc = _serve(tmp_path, port, SCHEDULER="off", TASKS_TOKEN="t" * 8)
    base = f"http://127.0.0.1:{port}"
    cron = {"Authorization": "Bearer " + "t" * 8}
    try:
        requests.post(f"{base}/tasks/remind", headers=cron, timeout=10)  # cron's first round
        _register_then_cancel(tmp_path, base)
        time.sleep(3)
        assert _notices(base) == []
        res = requests.post(f"{base}/tasks/remind", headers=cron, timeout=10)
        assert res.json()["changes"] == 1
        eventually(lambda: _notices(base), 10)
    finally:
        procs.stop(proc)
    assert "scheduler on" not in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize(("env", "problem"), [
    ({"SCHEDULER": "sometimes"}, "SCHEDULER must be 'on' or 'off'"),
    ({"SCHEDULER_SECONDS": "0"}, "SCHEDULER_SECONDS must be between 1 and 3600"),
])
def test_bad_scheduler_settings_are_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert any(problem in p for p in err.value.problems)


def test_scheduler_is_on_by_default_every_minute() -> None:
    settings = Settings.from_env({})
    assert settings.scheduler and settings.scheduler_seconds == 60
