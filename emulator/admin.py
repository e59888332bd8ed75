"""Control endpoints under /_emulator: seed data, look inside, inject faults, read the log."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, jsonify, request

from emulator.model import Formula, Sheet, Spreadsheet


def _dump(sheet: Sheet) -> dict[str, Any]:
    formulas = [[r + 1, c + 1] for r, row in enumerate(sheet.rows)
                for c, v in enumerate(row) if isinstance(v, Formula)]
    rows = [[v.text if isinstance(v, Formula) else v for v in row] for row in sheet.rows]
    return {"rows": rows, "formulas": formulas, "frozenRowCount": sheet.frozen_rows}


def set_faults(emu: Any, data: dict[str, Any]) -> None:
    """Errors, latency or hangs for some seconds of emulated time; lost append answers."""
    now, f = emu.clock(), emu.faults
    if "error_seconds" in data:
        f.error_until, f.error_status = now + data["error_seconds"], data.get("status", 503)
    if "latency_seconds" in data:
        f.latency_until, f.latency = now + data["latency_seconds"], data.get("latency", 0.5)
    if "hang_for" in data:
        f.hang_until, f.hang_seconds = now + data["hang_for"], data.get("hang_seconds", 3.0)
    if "lose_appends" in data:
        f.lose_appends, f.lose_hang = data["lose_appends"], data.get("lose_hang", 3.0)


def register_admin(app: Flask, emu: Any) -> None:
    """Add the /_emulator endpoints (never counted against quotas, never logged)."""

    @app.post("/_emulator/spreadsheets")
    def create() -> Response:
        data = request.get_json(force=True)
        shared = data.get("shared_with")
        book = Spreadsheet(data["id"], data.get("title", data["id"]),
                           shared_with=set(shared) if shared is not None else None)
        for title, rows in (data.get("sheets") or {"Sheet1": []}).items():
            book.add_sheet(title).rows = [list(r) for r in rows]
        book.sheets[0].sheet_id = 0  # Google numbers a new spreadsheet's first sheet 0
        with emu.lock:
            emu.books[book.id] = book
        return jsonify(book.metadata())

    @app.get("/_emulator/spreadsheets/<sid>")
    def dump(sid: str) -> Response:
        book = emu.books[sid]
        return jsonify({"title": book.title, "sheets": {s.title: _dump(s) for s in book.sheets}})

    @app.put("/_emulator/spreadsheets/<sid>/sheets/<title>")
    def replace_rows(sid: str, title: str) -> Response:
        sheet = next(s for s in emu.books[sid].sheets if s.title == title)
        with emu.lock:
            sheet.rows = [list(r) for r in request.get_json(force=True)["rows"]]
        return jsonify({"ok": True})

    @app.post("/_emulator/faults")
    def faults() -> Response:
        set_faults(emu, request.get_json(force=True))
        return jsonify({"ok": True})

    @app.post("/_emulator/quota")
    def quota() -> Response:
        data = request.get_json(force=True)
        emu.minute = float(data.get("minute", emu.minute))
        emu.read_quota = int(data.get("read", emu.read_quota))
        emu.write_quota = int(data.get("write", emu.write_quota))
        return jsonify({"ok": True})

    @app.get("/_emulator/log")
    def read_log() -> Response:
        since = request.args.get("since", default=0.0, type=float)
        with emu.lock:
            return jsonify([e for e in emu.log if e["at"] >= since])

    @app.delete("/_emulator/log")
    def reset_log() -> Response:
        with emu.lock:
            emu.log.clear()
            emu.recent.clear()
        return jsonify({"ok": True, "at": time.time()})
