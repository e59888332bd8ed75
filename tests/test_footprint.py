"""What a worker holds: a worker that has only answered commands has loaded neither Janome's
dictionary nor openpyxl (the workbook is read by a child process); the first question in a
person's own words loads the dictionary and is answered from the FAQ."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.backend import BackendError
from storage.sheets import workbook
from storage.sheets.sample import create_sample_workbook
from storage.sheets.workbook import WorkbookBackend, read_here

ROOT = Path(__file__).resolve().parent.parent

# Run in a fresh interpreter: this test process has loaded everything already.
WORKER = r"""
import base64, hashlib, hmac, json, sys
from linebot_app import create_app

class Line:  # records the replies; nothing leaves the process
    def __init__(self):
        self.replies = []
    def reply(self, token, messages):
        self.replies.append([m.get("text") or m.get("altText", "") for m in messages])
        return True
    def push(self, *args):
        return True
    multicast = push
    def show_loading(self, *args):
        return True
    def display_name(self, user_id):
        return ""

def on_error(error, event):
    raise SystemExit(f"handler failed: {error!r}")

line = Line()
app = create_app(line=line, on_error=on_error)
app.extensions["seminar_bot"].services.store.workbook()  # as post_worker_init does
client = app.test_client()

def say(n, text):
    event = {"type": "message", "mode": "active", "timestamp": 1767225600000,
             "source": {"type": "user", "userId": "U" + "1" * 32}, "webhookEventId": f"W{n}",
             "deliveryContext": {"isRedelivery": False}, "replyToken": f"r{n}",
             "message": {"id": str(n), "type": "text", "text": text, "quoteToken": "q"}}
    body = json.dumps({"destination": "U" + "f" * 32, "events": [event]}).encode()
    sig = base64.b64encode(hmac.new(b"footprint-secret", body, hashlib.sha256).digest()).decode()
    assert client.post("/callback", data=body, headers={"X-Line-Signature": sig}).status_code == 200

def held():
    return [name for name in ("janome", "openpyxl") if name in sys.modules]

say(1, "ヘルプ")
say(2, "イベント")
after_commands = held()
say(3, "ごみの収集日はいつ?")
print(json.dumps({"after_commands": after_commands, "after_question": held(),
                  "replies": line.replies}, ensure_ascii=False))
"""


def test_a_worker_that_answered_commands_holds_no_dictionary_and_no_openpyxl(
        tmp_path: Path) -> None:
    create_sample_workbook(tmp_path / "seminar.xlsx")
    env = {**os.environ, "LINE_CHANNEL_SECRET": "footprint-secret",
           "LINE_CHANNEL_ACCESS_TOKEN": "footprint-token",
           "LINE_API_BASE_URL": "http://127.0.0.1:9/unused",
           "WORKBOOK_PATH": str(tmp_path / "seminar.xlsx"), "DATA_DIR": str(tmp_path / "var"),
           "SCHEDULER": "off"}
    done = subprocess.run([sys.executable, "-c", WORKER], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(seen["replies"]) == 3 and "イベント" in " ".join(seen["replies"][1])
    assert seen["after_commands"] == []
    assert seen["after_question"] == ["janome"]
    assert seen["replies"][2][0].startswith("Q. ごみの収集日はいつですか?")


def test_the_reader_process_gives_back_the_cells_as_read_in_process(tmp_path: Path) -> None:
    path = tmp_path / "seminar.xlsx"
    create_sample_workbook(path)
    import openpyxl

    wb = openpyxl.load_workbook(path)
    wb["faq"].append(["改行", workbook.xlsx_escape("行1\r\n行2"), 12.5, dt.datetime(2026, 12, 5, 9, 30),
                      dt.time(13, 0), True])
    wb.save(path)
    via_child = WorkbookBackend(path).read()
    assert via_child == read_here(path)
    row = via_child["faq"][-1]
    assert row == ["改行", "行1\r\n行2", 12.5, dt.datetime(2026, 12, 5, 9, 30),
                   dt.time(13, 0), True]


def test_an_unreadable_workbook_gives_the_readers_reason(tmp_path: Path) -> None:
    path = tmp_path / "seminar.xlsx"
    path.write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(BackendError, match="^ワークブックを読めません: "):
        WorkbookBackend(path).read()


def test_a_reader_that_takes_too_long_is_stopped(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "seminar.xlsx"
    create_sample_workbook(path)
    monkeypatch.setattr(workbook, "READ_TIMEOUT_SECONDS", 0.001)
    with pytest.raises(BackendError, match="読み込みが 0 秒で終わりません"):
        WorkbookBackend(path).read()


def test_the_writer_process_saves_what_the_in_process_writer_saves(tmp_path: Path) -> None:
    from storage.backend import BackendBusy, SheetChanges

    paths = [tmp_path / "child.xlsx", tmp_path / "here.xlsx"]
    for path in paths:
        create_sample_workbook(path, dt.date(2026, 12, 1))
    changes = [SheetChanges("registrations", [
        {"id": "R1", "user_id": "U1", "event_id": "E2", "status": "confirmed", "room": "=1+1"},
        {"id": "R2", "user_id": "U2", "event_id": "E2", "status": "waitlisted"}]),
        SheetChanges("registrations", [], [("R1", {"status": "cancelled"})])]
    WorkbookBackend(paths[0]).write(changes)
    WorkbookBackend(paths[1], in_process=True).write(changes)
    read = [read_here(p)["registrations"] for p in paths]
    assert read[0] == read[1] and len(read[0]) == 3
    assert read[0][1][read[0][0].index("room")] == "=1+1"  # literal text, never a formula
    WorkbookBackend(paths[0]).write(changes)  # written again: ids already there are not added
    assert read_here(paths[0])["registrations"] == read[1]
    paths[0].write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(BackendError, match="^ワークブックを開けません: ") as refused:
        WorkbookBackend(paths[0]).write(changes)
    assert not isinstance(refused.value, BackendBusy)
