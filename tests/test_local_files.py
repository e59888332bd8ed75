"""DATA_DIR: a start refuses a folder it cannot write or a damaged database; a cold start while
the sheet cannot be read answers from the last good copy kept there."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.local.outbox import SqliteOutbox
from storage.local.sqlite import CHECK_EVERY_SECONDS, LocalStorageError, check_local_files
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


def _swap(path: Path) -> None:
    """Another SQLite file takes the outbox's place (as a careless copy or restore would)."""
    other = path.with_name("other.sqlite3")
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    os.replace(other, path)
    time.sleep(CHECK_EVERY_SECONDS)  # (the bot looks at the file at most this often)


def test_an_outbox_replaced_under_the_bot_fails_every_use_and_is_taken_back(tmp_path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = SqliteOutbox(path)
    for n in range(3):
        outbox.add("registrations", {"id": f"R{n}", "user_id": f"U{n}", "status": "confirmed"},
                   ledger=True)
    outbox.mark_done([outbox.pending()[0].seq])  # one row is in the sheet already
    _swap(path)
    for use in (lambda: outbox.add("registrations", {"id": "R9"}), outbox.has_pending,
                outbox.health):
        with pytest.raises(sqlite3.OperationalError, match="replaced or removed"):
            use()
    (rescued,) = tmp_path.glob("outbox.sqlite3.rescued-*[0-9]")
    with sqlite3.connect(path) as foreign:  # the file now there is left as it was given
        assert foreign.execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]
    shutil.copy(rescued, f"{rescued}0")  # a second worker's copy of the same file
    fresh = SqliteOutbox(path)
    assert fresh.take_back_rescued() == 2  # the two unwritten rows, once
    assert [(e.row_id, e.attempts) for e in fresh.pending()] == [("R1", 1), ("R2", 1)]
    assert set(fresh.ledger("registrations", 10**9)) == {"R0", "R1", "R2"}
    assert fresh.take_back_rescued() == 0  # each file once
    assert sorted(p.name.split(".")[-1] for p in tmp_path.glob("outbox.sqlite3.rescued-*")
                  if not p.name.endswith(("-wal", "-shm"))) == ["taken", "taken"]


def test_a_removed_outbox_fails_every_use(tmp_path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = SqliteOutbox(path)
    outbox.add("registrations", {"id": "R1"})
    path.unlink()
    time.sleep(CHECK_EVERY_SECONDS)
    with pytest.raises(sqlite3.OperationalError, match="replaced or removed"):
        outbox.add("registrations", {"id": "R2"})
    assert not path.exists()  # not created again behind the bot's back
    assert SqliteOutbox(path).take_back_rescued() == 1


def test_a_damaged_file_put_in_the_outboxs_place_names_the_rescued_rows(tmp_path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = SqliteOutbox(path)
    outbox.add("registrations", {"id": "R1"}, ledger=True)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 64)
    os.replace(garbage, path)  # a torn file takes its place
    time.sleep(CHECK_EVERY_SECONDS)
    with pytest.raises(sqlite3.OperationalError, match="replaced or removed"):
        outbox.add("registrations", {"id": "R2"})
    (rescued,) = tmp_path.glob("outbox.sqlite3.rescued-*[0-9]")
    with pytest.raises(LocalStorageError) as refused:  # the next start
        check_local_files(tmp_path)
    assert f"{path} is damaged" in str(refused.value)
    assert f"is in {rescued.name}: the next start takes it back" in str(refused.value)


def test_a_start_takes_back_what_a_replaced_outbox_held(tmp_path) -> None:
    from tests.conftest import make_settings, make_store

    settings = make_settings(tmp_path)
    path = settings.data_dir / "outbox.sqlite3"
    first = SqliteOutbox(path)
    first.add("registrations", {"id": "R1", "event_id": "E2", "user_id": "U1"}, ledger=True)
    _swap(path)
    with pytest.raises(sqlite3.OperationalError, match="replaced or removed"):
        first.has_pending()
    store = make_store(settings)  # the next start
    assert [e.row_id for e in store.outbox.pending()] == ["R1"]
