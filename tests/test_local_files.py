"""DATA_DIR: a start refuses a folder it cannot write or a damaged database; a cold start while
the sheet cannot be read answers from the last good copy kept there."""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
from pathlib import Path

from storage.local.outbox import SqliteOutbox
from storage.sheets.sample import create_sample_workbook
from storage.sheets.snapshot import FileSnapshot
from storage.sheets.workbook import WorkbookBackend
from storage.store import Store
from tests.conftest import ROOT, TODAY


def _check(tmp_path: Path, fsize: int | None = None) -> subprocess.CompletedProcess:
    book = tmp_path / "seminar.xlsx"
    if not book.exists():
        create_sample_workbook(book, TODAY)
    env = {**os.environ, "WORKBOOK_PATH": str(book), "DATA_DIR": str(tmp_path / "var")}

    def limit() -> None:  # Python ignores SIGXFSZ: a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "linebot_app", "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=limit if fsize else None)


def test_a_data_dir_with_no_room_is_refused_with_the_fix(tmp_path) -> None:
    result = _check(tmp_path, fsize=64 * 1024)
    assert result.returncode == 1
    assert result.stdout.startswith(f"✗ DATA_DIR {tmp_path / 'var'} cannot be written (File too "
                                    "large). Free some space"), result.stdout + result.stderr
    assert list((tmp_path / "var").iterdir()) == []  # the probe is gone


def test_a_damaged_outbox_is_named_by_check_and_left_where_it_is(tmp_path) -> None:
    outbox = tmp_path / "var" / "outbox.sqlite3"
    outbox.parent.mkdir()
    outbox.write_bytes(b"not a database at all" * 100)
    result = _check(tmp_path)
    assert result.returncode == 1
    assert f"✗ {outbox} is damaged (file is not a database)" in result.stdout
    assert outbox.read_bytes() == b"not a database at all" * 100
    assert _check(tmp_path / "fresh").returncode == 0  # a sound DATA_DIR passes


def _store(tmp_path: Path, book: Path) -> Store:
    outbox = SqliteOutbox(tmp_path / "var" / "outbox.sqlite3")
    return Store(WorkbookBackend(book), outbox, flush_interval=0,
                 snapshot=FileSnapshot(tmp_path / "var" / "sheets-snapshot.json"))


def test_a_cold_start_with_an_unreadable_workbook_answers_from_the_last_good_copy(
        tmp_path, caplog) -> None:
    book = create_sample_workbook(tmp_path / "seminar.xlsx", TODAY)
    first = _store(tmp_path, book)
    good = first.reload()
    good_bytes = book.read_bytes()
    book.write_bytes(b"PK\x03\x04 half a zip")  # a torn save
    with caplog.at_level(logging.WARNING, "storage.store"):
        cold = _store(tmp_path, book)  # a new process
        org = cold.workbook()
    assert cold.from_snapshot and org.events == good.events and org.faq == good.faq
    assert org.settings == good.settings and org.schedule == good.schedule
    assert "answering from the copy saved in" in caplog.text
    cold.add("registrations", {"id": "R1", "event_id": "E2", "user_id": "U" + "1" * 32,
                               "status": "confirmed", "role": "participant"})
    assert [r.id for r in cold.registrations()] == ["R1"]  # counted while the sheet is away
    assert cold.flush() == 0  # waits in the outbox
    book.write_bytes(good_bytes)
    cold.reload()
    assert not cold.from_snapshot
    assert cold.flush(now=True) == 1
    assert [r.id for r in cold.reload().registrations] == ["R1"]


def test_the_copy_is_saved_only_when_the_sheets_changed(tmp_path) -> None:
    book = create_sample_workbook(tmp_path / "seminar.xlsx", TODAY)
    store = _store(tmp_path, book)
    store.reload()
    saved = tmp_path / "var" / "sheets-snapshot.json"
    first = saved.stat().st_mtime_ns
    os.utime(book)  # touched, same content
    store.reload()
    assert saved.stat().st_mtime_ns == first
    store.add("feedback", {"id": "F1", "event_id": "E2", "rating": "5"})
    store.flush()
    store.reload()
    assert saved.stat().st_mtime_ns != first and '"F1"' in saved.read_text()
