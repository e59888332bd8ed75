"""The embedded .xlsx backend (openpyxl): read every sheet, write queued rows in one save.

Reads and writes run in a child process (python -m storage.sheets.workbook [--write] PATH):
parsing and saving a workbook is pure Python that grows with its rows, and in the bot's worker it
would hold the GIL while webhooks wait, and leave openpyxl and its garbage in a worker that only
answers questions."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.schema import cell_text
from storage.backend import BackendBusy, BackendError, SheetChanges
from storage.sheets import snapshot

if TYPE_CHECKING:
    import openpyxl
    from openpyxl.worksheet.worksheet import Worksheet

log = logging.getLogger(__name__)
READ_TIMEOUT_SECONDS = 60.0  # a reader slower than this is stopped, and the read fails
WRITE_TIMEOUT_SECONDS = 60.0  # and a writer (the outbox keeps the rows; a retry checks ids)
UNREADABLE = 3  # the child's exit code for a workbook that cannot be read (the reason on stderr)
BUSY = 4  # the writer's, for a workbook open in an office program or changed while saving
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0d\x0e-\x1f]")


def xlsx_escape(text: str) -> str:
    """Keep characters XML would drop or change (CR, control codes) as _xHHHH_, as Excel does."""
    text = _ESCAPED.sub(lambda m: "_x005F" + m.group(0), text)
    return _UNSAFE.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)


def xlsx_unescape(value: Any) -> Any:
    """The inverse of xlsx_escape, for text read from a workbook."""
    if not isinstance(value, str) or "_x" not in value:
        return value
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), value)


class WorkbookBackend:
    """Reads and writes one local workbook; never writes while Excel or LibreOffice has it open."""

    def __init__(self, path: Path | str, *, in_process: bool = False) -> None:
        self.path = Path(path)
        self.in_process = in_process  # read here, not in a child (tests: a child costs ~150 ms)
        self.saved_from: tuple[int, int] | None = None  # the version the last save started from

    def describe(self) -> str:
        """Where the data lives, for logs."""
        return f"workbook {self.path}"

    def version(self) -> tuple[int, int] | None:
        """A cheap change token: modification time and size."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def lock_file(self) -> Path | None:
        """The office lock file beside the workbook, when one is there."""
        for name in (f"~${self.path.name}", f".~lock.{self.path.name}#"):
            candidate = self.path.with_name(name)
            if candidate.exists():
                return candidate
        return None

    def read(self) -> dict[str, list[list[Any]]]:
        """Every sheet's rows, values only (cached results of formulas), read by a child
        process; its cell types (dates and times) come back as they were."""
        if not self.path.exists():
            raise BackendError(f"ワークブックがありません: {self.path}")
        if self.in_process:
            return read_here(self.path)
        try:
            done = subprocess.run([sys.executable, "-m", "storage.sheets.workbook", str(self.path)],
                                  capture_output=True, timeout=READ_TIMEOUT_SECONDS,
                                  cwd=Path(__file__).resolve().parents[2])
        except subprocess.TimeoutExpired as err:
            raise BackendError(f"ワークブックの読み込みが {READ_TIMEOUT_SECONDS:.0f} 秒で終わりません"
                               ) from err
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise BackendError(reason[-1] if done.returncode == UNREADABLE and reason else
                               f"ワークブックを読めません: the reader exited with "
                               f"{done.returncode}: {' / '.join(reason[-3:])}")
        return snapshot.loads(done.stdout.decode("utf-8"))

    def write(self, changes: Sequence[SheetChanges]) -> None:
        """Apply every change in one save, by a child process; rows whose id is already there
        are not added again."""
        lock = self.lock_file()
        if lock is not None:
            raise BackendBusy(f"ワークブックが開かれています ({lock.name})")
        self.saved_from = before = self.version()
        if self.in_process:
            write_here(self, changes, before)
            return
        order = {"before": before, "changes": [dataclasses.asdict(c) for c in changes]}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "storage.sheets.workbook", "--write", str(self.path)],
                input=json.dumps(order, ensure_ascii=False).encode("utf-8"), capture_output=True,
                timeout=WRITE_TIMEOUT_SECONDS, cwd=Path(__file__).resolve().parents[2])
        except subprocess.TimeoutExpired as err:
            raise BackendError(f"ワークブックの保存が {WRITE_TIMEOUT_SECONDS:.0f} 秒で終わりません"
                               ) from err
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        if done.returncode == BUSY:
            raise BackendBusy(reason[-1] if reason else "ワークブックが使用中です")
        if done.returncode != 0:
            raise BackendError(reason[-1] if done.returncode == UNREADABLE and reason else
                               f"ワークブックを保存できません: the writer exited with "
                               f"{done.returncode}: {' / '.join(reason[-3:])}")

    def _save(self, wb: openpyxl.Workbook, before: tuple[int, int] | None) -> None:
        """Save through a temporary file that replaces the workbook, keeping its mode and owner."""
        fd, tmp = tempfile.mkstemp(prefix=".saving-", suffix=".xlsx", dir=self.path.parent)
        os.close(fd)
        try:
            wb.save(tmp)
            _copy_mode_and_owner(self.path, tmp)
            if self.version() != before or self.lock_file() is not None:
                raise BackendBusy("保存の直前にワークブックが変更されました")
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def write_here(backend: WorkbookBackend, changes: Sequence[SheetChanges],
               before: tuple[int, int] | None) -> None:
    """What the writer process does: load, apply, and save unless the workbook changed since
    `before` (the version the bot saw) or an office program opened it."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(backend.path)
    except Exception as err:
        raise BackendError(f"ワークブックを開けません: {err}") from err
    for change in changes:
        _apply(_sheet(wb, change.sheet, change.keys()), change)
    backend._save(wb, before)


def _copy_mode_and_owner(original: Path, tmp: str) -> None:
    """Give the new file the workbook's permissions (mkstemp makes 0600) and, if allowed, owner."""
    try:
        st = original.stat()
    except FileNotFoundError:
        return
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except PermissionError:  # not root: the file stays ours, with the original mode
            log.debug("could not keep the owner of %s", original)


def _sheet(wb: openpyxl.Workbook, name: str, keys: list[str]) -> Worksheet:
    if name in wb.sheetnames:
        return wb[name]
    ws = wb.create_sheet(name)
    ws.append(keys)
    return ws


def _header(ws: Worksheet, keys: list[str]) -> dict[str, int]:
    """The header's columns by key; keys the sheet lacks are added at the right."""
    header = {cell_text(c.value).lower(): c.column for c in ws[1] if cell_text(c.value)}
    for key in keys:
        if key not in header:
            column = ws.max_column + 1 if any(c.value for c in ws[1]) else 1
            ws.cell(row=1, column=column, value=key)
            header[key] = column
    return header


def _apply(ws: Worksheet, change: SheetChanges) -> None:
    header = _header(ws, change.keys())
    id_col = header["id"]
    rows_by_id = {
        cell_text(ws.cell(row=r, column=id_col).value): r for r in range(2, ws.max_row + 1)
    }
    for row in change.appends:
        if str(row["id"]) in rows_by_id:
            continue
        target = _next_empty_row(ws)
        _write_cells(ws, target, header, row)
        rows_by_id[str(row["id"])] = target
    for row_id, fields in change.updates:
        target = rows_by_id.get(row_id)
        if target is None:
            log.warning("update for a row that is not in %s; dropped", ws.title)
            continue
        _write_cells(ws, target, header, fields)


def _next_empty_row(ws: Worksheet) -> int:
    row = ws.max_row
    while row > 1 and all(c.value in (None, "") for c in ws[row]):
        row -= 1
    return row + 1


def _write_cells(ws: Worksheet, row: int, header: dict[str, int], values: dict[str, Any]) -> None:
    for key, value in values.items():
        column = header.get(key)
        if column is None:
            continue
        if isinstance(value, str):
            value = xlsx_escape(value)
        cell = ws.cell(row=row, column=column, value=value)
        if isinstance(value, str):
            cell.data_type = "s"  # user text is stored literally, never as a formula


def read_here(path: Path) -> dict[str, list[list[Any]]]:
    """What the reader process does: every sheet's rows, values only."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # a half-written or corrupt file: keep the last good copy
        raise BackendError(f"ワークブックを読めません: {err}") from err
    try:
        return {ws.title: [[xlsx_unescape(v) for v in r] for r in ws.iter_rows(values_only=True)]
                for ws in wb.worksheets}
    finally:
        wb.close()


def _reader(path: str) -> int:
    try:
        text = snapshot.dumps(read_here(Path(path)))
    except BackendError as err:
        sys.stderr.write(f"{err}\n")
        return UNREADABLE
    sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


def _writer(path: str) -> int:
    os.nice(10)  # a save is background work: the worker's webhooks come first on a busy machine
    order = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    changes = [SheetChanges(c["sheet"], c["appends"], [(i, f) for i, f in c["updates"]],
                            c["verify"]) for c in order["changes"]]
    before = tuple(order["before"]) if order["before"] is not None else None
    try:
        write_here(WorkbookBackend(path), changes, before)  # type: ignore[arg-type]
    except BackendBusy as err:
        sys.stderr.write(f"{err}\n")
        return BUSY
    except BackendError as err:
        sys.stderr.write(f"{err}\n")
        return UNREADABLE
    return 0


if __name__ == "__main__":
    raise SystemExit(_writer(sys.argv[2]) if sys.argv[1] == "--write" else _reader(sys.argv[1]))
