"""Fault drills with real processes: kill -9 during a burst, SIGTERM during writes."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench import procs
from linebot_app.simulator.platform import sign
from linebot_app.state import State
from tests.conftest import (
    SECRET,
    TOKEN,
    Emu,
    eventually,
    google_env,
    make_settings,
    make_store,
    text_event,
)

pytestmark = pytest.mark.slow
USERS = [f"U{n:032x}" for n in range(1, 401)]


@pytest.fixture
def stack(tmp_path, emu: Emu) -> Iterator[dict]:
    """The emulated sheet initialised from the sample workbook, and a standalone simulator."""
    settings = make_settings(tmp_path, **google_env(emu))
    make_store(settings)  # runs init-sheet against the emulator
    state = State(settings.data_dir / "bot.sqlite3")
    for user in USERS:
        state.give_consent(user)
    bot_port, sim_port = procs.free_port(), procs.free_port()
    sim = procs.simulator(sim_port, bot_port, SECRET, TOKEN, tmp_path / "sim.log")
    env = {**google_env(emu), "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
           "LINE_API_BASE_URL": f"http://127.0.0.1:{sim_port}/simulator/line",
           "DATA_DIR": str(settings.data_dir), "WORKBOOK_PATH": str(settings.workbook_path),
           "SHEETS_BACKOFF_CAP_SECONDS": "1"}
    yield {"env": env, "port": bot_port, "tmp": tmp_path, "emu": emu}
    procs.stop(sim)


def _start(stack: dict, name: str) -> object:
    return procs.gunicorn("linebot_app:create_app()", stack["port"], stack["env"],
                          Path(stack["tmp"]) / f"{name}.log", workers=2, threads=4)


def _register(port: int, user: str, event: str = "E1") -> bool:
    body = json.dumps({"destination": "U" + "f" * 32,
                       "events": [text_event(f"参加登録 {event} 見学 経験者", user=user)]}).encode()
    try:
        res = requests.post(f"http://127.0.0.1:{port}/callback", data=body, timeout=10,
                            headers={"X-Line-Signature": sign(SECRET, body)})
    except requests.RequestException:
        return False
    return res.status_code == 200


def _burst(port: int, users: list[str], acked: list[str]) -> None:
    for user in users:
        if _register(port, user, "E2"):
            acked.append(user)


def _wait_rows(emu: Emu, count: int, seconds: float = 30) -> list[str]:
    def landed() -> list[str]:
        users = [r["user_id"] for r in emu.rows("registrations")]
        return users if len(users) >= count else []

    return eventually(landed, timeout=seconds, every=0.3)


def test_kill_9_during_a_burst_loses_no_acknowledged_registration(stack: dict) -> None:
    bot = _start(stack, "bot1")
    acked: list[str] = []
    sender = threading.Thread(target=_burst, args=(stack["port"], USERS, acked))
    sender.start()
    eventually(lambda: len(acked) >= 50, timeout=30, every=0.01)
    procs.stop(bot, signal.SIGKILL)
    sender.join(timeout=60)
    assert 0 < len(acked) < len(USERS)
    bot = _start(stack, "bot2")
    try:
        users = _wait_rows(stack["emu"], len(acked))
    finally:
        procs.stop(bot)
    assert set(acked) <= set(users)
    assert len(users) == len(set(users))  # exactly once


def test_sigterm_flushes_every_row_before_exit(stack: dict) -> None:
    emu: Emu = stack["emu"]
    bot = _start(stack, "bot")
    for user in USERS[:30]:
        assert _register(stack["port"], user, "E2")
    assert procs.stop(bot, signal.SIGTERM) == 0
    users = [r["user_id"] for r in emu.rows("registrations")]
    assert sorted(users) == sorted(USERS[:30])


def _ready(port: int) -> bool:
    return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200


def _lease(stack: dict) -> dict[str, float]:
    """The flush lease and schedule as the outbox holds them (read, never written)."""
    path = Path(stack["env"]["DATA_DIR"]) / "outbox.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def _confirmed_within_capacity(emu: Emu) -> bool:
    rows = emu.rows("registrations")
    events = {e["id"]: e for e in emu.rows("events")}
    for event_id, event in events.items():
        for role, column in (("participant", "capacity"), ("observer", "observer_capacity")):
            seats = str(event.get(column) or "")
            taken = sum(1 for r in rows if r["event_id"] == event_id and r["role"] == role
                        and r["status"] == "confirmed")
            if seats.isdigit() and taken > int(seats):
                return False
    return True


def test_sigterm_during_a_429_backoff_writes_every_row_within_the_grace_period(stack) -> None:
    emu: Emu = stack["emu"]
    stack["env"]["SHEETS_BACKOFF_CAP_SECONDS"] = "64"
    bot = _start(stack, "bot")
    eventually(lambda: _ready(stack["port"]), timeout=30, every=0.2)
    emu.faults(error_seconds=300, status=429)
    users = USERS[:200]
    for user in users:
        assert _register(stack["port"], user, "E2")
    # the backoff schedule now waits past the 8 s drain: only ignoring it can write the rows
    eventually(lambda: _lease(stack)["next_flush"] - time.time() > 10, timeout=90, every=0.5)
    emu.faults(error_seconds=4, status=429)  # Sheets answers again 4 s into the grace period
    assert procs.stop(bot, signal.SIGTERM) == 0
    rows = emu.rows("registrations")
    assert sorted(r["user_id"] for r in rows) == sorted(users)  # 0 lost, 0 duplicated
    assert _confirmed_within_capacity(emu)
    assert "0 rows wait in" in (Path(stack["tmp"]) / "bot.log").read_text()


def test_kill_9_mid_flush_the_sheet_is_complete_within_5_s_of_the_restart(stack) -> None:
    emu: Emu = stack["emu"]
    bot = _start(stack, "bot1")
    eventually(lambda: _ready(stack["port"]), timeout=30, every=0.2)
    users = USERS[:60]
    for user in users[:20]:
        assert _register(stack["port"], user, "E2")
    _wait_rows(emu, 20)
    emu.faults(lose_appends=1, lose_hang=60)  # the next append lands, its answer never comes
    for user in users[20:40]:
        assert _register(stack["port"], user, "E2")
    _wait_rows(emu, 40)  # landed: the flush that wrote them now hangs, holding the lease
    for user in users[40:]:  # acknowledged while the flush hangs: only in the outbox
        assert _register(stack["port"], user, "E2")
    assert _lease(stack)["lease_until"] > time.time() + 60
    assert len(emu.rows("registrations")) == 40
    procs.stop(bot, signal.SIGKILL)
    bot = _start(stack, "bot2")
    restarted = time.monotonic()
    try:
        landed = _wait_rows(emu, len(users), seconds=5)
        took = time.monotonic() - restarted
    finally:
        procs.stop(bot)
    assert sorted(landed) == sorted(users), f"after {took:.1f}s"  # complete, none twice
    assert _confirmed_within_capacity(emu)
