"""A local Google Sheets API v4 emulator: the endpoints gspread uses, quotas, faults, a log.

Test and benchmark tooling, like Google's own emulators; reached through SHEETS_EMULATOR_HOST.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

from emulator.model import ApiError, Sheet, Spreadsheet, range_name, user_entered

ANONYMOUS = "anonymous"


@dataclass
class Faults:
    """Injected trouble: errors or latency for a while, hangs, lost append responses."""

    error_until: float = 0.0
    error_status: int = 503
    latency: float = 0.0
    latency_until: float = 0.0
    hang_seconds: float = 0.0
    hang_until: float = 0.0
    lose_appends: int = 0
    lose_hang: float = 0.0


@dataclass
class Emulator:
    """All state of one emulator process."""

    minute: float = 60.0
    read_quota: int = 60
    write_quota: int = 60
    clock: Callable[[], float] = time.monotonic
    books: dict[str, Spreadsheet] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    log: list[dict[str, Any]] = field(default_factory=list)
    recent: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def over_quota(self, user: str, kind: str) -> bool:
        """Count this request in a sliding minute; True when it is one too many."""
        now = self.clock()
        window = self.recent.setdefault((user, kind), deque())
        while window and window[0] <= now - self.minute:
            window.popleft()
        limit = self.read_quota if kind == "read" else self.write_quota
        if len(window) >= limit:
            return True
        window.append(now)
        return False

    def book(self, sid: str, user: str) -> Spreadsheet:
        book = self.books.get(sid)
        if book is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        if book.shared_with is not None and user not in book.shared_with:
            raise ApiError(403, "The caller does not have permission", "PERMISSION_DENIED")
        return book


# ---- operations: (emulator, book, request data) -> JSON ---------------------------------------
def op_metadata(book: Spreadsheet, args: dict[str, Any], body: Any) -> dict[str, Any]:
    return book.metadata()


def _columns(rows: list[list[Any]]) -> list[list[Any]]:
    width = max((len(r) for r in rows), default=0)
    cols = [[r[c] if c < len(r) else "" for r in rows] for c in range(width)]
    for col in cols:
        while col and col[-1] == "":
            col.pop()
    return cols


def _value_range(book: Spreadsheet, text: str, args: dict[str, Any]) -> dict[str, Any]:
    sheet, a1 = book.resolve(text)
    box = sheet.bounds(a1)
    major = args.get("majorDimension", "ROWS")
    out: dict[str, Any] = {"range": range_name(sheet, box), "majorDimension": major}
    values = sheet.get(box, args.get("valueRenderOption", "FORMATTED_VALUE"))
    if major == "COLUMNS":
        values = _columns(values)
    if values:
        out["values"] = values
    return out


def op_values_get(book: Spreadsheet, args: dict[str, Any], body: Any) -> dict[str, Any]:
    return _value_range(book, args["range"], args)


def op_batch_get(book: Spreadsheet, args: dict[str, Any], body: Any) -> dict[str, Any]:
    ranges = [_value_range(book, r, args) for r in args.get("ranges", [])]
    return {"spreadsheetId": book.id, "valueRanges": ranges}


def _stored(values: list[list[Any]], option: str | None) -> list[list[Any]]:
    if option not in ("RAW", "USER_ENTERED"):
        raise ApiError(400, "'valueInputOption' is required but not specified",
                       "INVALID_ARGUMENT")
    if option == "RAW":
        return values
    return [[user_entered(v) for v in row] for row in values]


def _updated(book: Spreadsheet, sheet: Sheet, box: tuple[int, int, int, int]) -> dict[str, Any]:
    r1, c1, r2, c2 = box
    return {"spreadsheetId": book.id, "updatedRange": range_name(sheet, box),
            "updatedRows": r2 - r1 + 1, "updatedColumns": c2 - c1 + 1,
            "updatedCells": (r2 - r1 + 1) * (c2 - c1 + 1)}


def _write(book: Spreadsheet, text: str, values: list[list[Any]], option: str | None
           ) -> dict[str, Any]:
    sheet, a1 = book.resolve(text)
    r1, c1 = a1.r1 or 1, a1.c1 or 1
    r2, c2 = sheet.put(r1, c1, _stored(values, option))
    return _updated(book, sheet, (r1, c1, r2, c2))


def op_values_update(book: Spreadsheet, args: dict[str, Any], body: Any) -> dict[str, Any]:
    return _write(book, args["range"], body.get("values", []), args.get("valueInputOption"))


def op_batch_update_values(book: Spreadsheet, args: dict[str, Any], body: Any) -> dict[str, Any]:
    option = body.get("valueInputOption")
    responses = [_write(book, d["range"], d.get("values", []), option)
                 for d in body.get("data", [])]
    return {"spreadsheetId": book.id,
            "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
            "totalUpdatedColumns": sum(r["updatedColumns"] for r in responses),
            "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
            "totalUpdatedSheets": len({r["updatedRange"].rpartition("!")[0] for r in responses}),
            "responses": responses}


def op_append(book: Spreadsheet, args: dict[str, Any], body: Any) -> dict[str, Any]:
    sheet, a1 = book.resolve(args["range"])
    values = _stored(body.get("values", []), args.get("valueInputOption"))
    table = sheet.table(a1)
    out: dict[str, Any] = {"spreadsheetId": book.id}
    if table:
        out["tableRange"] = range_name(sheet, table)
        start, col = table[2] + 1, table[1]
    else:
        start, col = sheet.bounds(a1)[0], sheet.bounds(a1)[1]
    if args.get("insertDataOption") == "INSERT_ROWS":
        sheet.insert_rows(start, len(values))
    last_r, last_c = sheet.put(start, col, values)
    out["updates"] = _updated(book, sheet, (start, col, last_r, last_c))
    return out


def op_clear(book: Spreadsheet, args: dict[str, Any], body: Any) -> dict[str, Any]:
    sheet, a1 = book.resolve(args["range"])
    box = sheet.bounds(a1)
    sheet.clear(box)
    return {"spreadsheetId": book.id, "clearedRange": range_name(sheet, box)}


def _add_sheet(book: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    props = req.get("properties", {})
    grid = props.get("gridProperties", {})
    sheet = book.add_sheet(props.get("title") or f"Sheet{len(book.sheets) + 1}",
                           grid.get("rowCount", 1000), grid.get("columnCount", 26))
    sheet.frozen_rows = int(grid.get("frozenRowCount", 0))
    return {"addSheet": {"properties": sheet.properties()}}


def _update_sheet(book: Spreadsheet, req: dict[str, Any]) -> dict[str, Any]:
    props = req.get("properties", {})
    sheet = book.by_id(int(props.get("sheetId", 0)))
    grid = props.get("gridProperties", {})
    fields = req.get("fields", "").replace(".", "/")
    if "hidden" in fields:
        _hide(book, sheet, bool(props.get("hidden", False)))
    if "title" in fields and props.get("title"):
        sheet.title = props["title"]
    if "frozenRowCount" in fields:
        sheet.frozen_rows = int(grid.get("frozenRowCount", 0))
    if "frozenColumnCount" in fields:
        sheet.frozen_cols = int(grid.get("frozenColumnCount", 0))
    sheet.resize(grid.get("rowCount") if "rowCount" in fields else None,
                 grid.get("columnCount") if "columnCount" in fields else None)
    return {}


def _hide(book: Spreadsheet, sheet: Sheet, hidden: bool) -> None:
    if hidden and all(s.hidden or s is sheet for s in book.sheets):
        raise ApiError(400, "Invalid requests[0].updateSheetProperties: You can't hide all the "
                       "sheets in a document.", "INVALID_ARGUMENT")
    sheet.hidden = hidden


BATCH_REQUESTS: dict[str, Callable[[Spreadsheet, dict[str, Any]], dict[str, Any]]] = {
    "addSheet": _add_sheet,
    "updateSheetProperties": _update_sheet,
}


def op_batch_update(book: Spreadsheet, args: dict[str, Any], body: Any) -> dict[str, Any]:
    replies = []
    for i, req in enumerate(body.get("requests", [])):
        kind = next(iter(req), "")
        if kind not in BATCH_REQUESTS:
            raise ApiError(400, f"Invalid requests[{i}]: {kind} is not supported by the emulator",
                           "INVALID_ARGUMENT")
        replies.append(BATCH_REQUESTS[kind](book, req[kind]))
    return {"spreadsheetId": book.id, "replies": replies}


# ---- routing -----------------------------------------------------------------------------------
Operation = Callable[[Spreadsheet, dict[str, Any], Any], dict[str, Any]]


def route(method: str, rest: str) -> tuple[str, str, Operation, dict[str, Any]]:
    """(spreadsheet id, kind, operation, args) for a path under /v4/spreadsheets/."""
    sid, sep, tail = rest.partition("/")
    if sep:
        return (sid, *_route_values(method, tail))
    sid, colon, action = rest.partition(":")
    if not colon and method == "GET":
        return sid, "read", op_metadata, {}
    if action == "batchUpdate" and method == "POST":
        return sid, "write", op_batch_update, {}
    raise ApiError(404, "Not found", "NOT_FOUND")


def _route_values(method: str, tail: str) -> tuple[str, Operation, dict[str, Any]]:
    if tail == "values:batchGet" and method == "GET":
        return "read", op_batch_get, {"ranges": request.args.getlist("ranges")}
    if tail == "values:batchUpdate" and method == "POST":
        return "write", op_batch_update_values, {}
    rng = tail.removeprefix("values/")
    for suffix, op in ((":append", op_append), (":clear", op_clear)):
        if rng.endswith(suffix) and method == "POST":
            return "write", op, {"range": rng[: -len(suffix)]}
    plain = {"GET": ("read", op_values_get), "PUT": ("write", op_values_update)}
    if tail.startswith("values/") and method in plain:
        kind, op = plain[method]
        return kind, op, {"range": rng}
    raise ApiError(404, "Not found", "NOT_FOUND")


def caller() -> str:
    """Who is calling: the token after 'Bearer ' (dummy credentials carry an email)."""
    auth = request.headers.get("Authorization", "")
    return auth.removeprefix("Bearer ").strip() or ANONYMOUS


def create_emulator(**options: Any) -> Flask:
    """The emulator as a Flask app (see Emulator for options)."""
    app = Flask("sheets_emulator")
    emu = Emulator(**options)
    app.extensions["sheets_emulator"] = emu

    @app.route("/v4/spreadsheets/<path:rest>", methods=["GET", "POST", "PUT"])
    def api(rest: str) -> Response | tuple[Response, int]:
        return handle(emu, rest)

    from emulator.admin import register_admin

    register_admin(app, emu)
    return app


def handle(emu: Emulator, rest: str) -> tuple[Response, int]:
    """One API request: faults, quota, permission, then the operation, all logged."""
    entry: dict[str, Any] = {"method": request.method, "path": rest, "at": time.time(),
                             "args": request.args.to_dict(), "user": caller()}
    try:
        sid, kind, op, args = route(request.method, rest)
        entry["kind"] = kind
        args = {**request.args.to_dict(), **args}
        _inject_faults(emu)
        result = _run(emu, sid, kind, op, args, caller())
        entry.update(status=200, rows=_rows_in(op, request.get_json(silent=True)))
        _maybe_lose(emu, op)
        return jsonify(result), 200
    except ApiError as err:
        entry["status"] = err.code
        return jsonify(err.body()), err.code
    finally:
        with emu.lock:
            emu.log.append(entry)


def _run(emu: Emulator, sid: str, kind: str, op: Operation, args: dict[str, Any], user: str
         ) -> dict[str, Any]:
    with emu.lock:
        if emu.over_quota(user, kind):
            raise ApiError(429, f"Quota exceeded for quota metric '{kind.title()} requests' and "
                           f"limit '{kind.title()} requests per minute per user'",
                           "RESOURCE_EXHAUSTED")
        book = emu.book(sid, user)
        return op(book, args, request.get_json(silent=True) or {})


def _rows_in(op: Operation, body: Any) -> int:
    if op is op_append and isinstance(body, dict):
        return len(body.get("values", []))
    return 0


def _inject_faults(emu: Emulator) -> None:
    now = emu.clock()
    faults = emu.faults
    if now < faults.latency_until:
        time.sleep(faults.latency)
    if now < faults.hang_until:
        time.sleep(faults.hang_seconds)
    if now < faults.error_until:
        raise ApiError(faults.error_status, "The service is currently unavailable.",
                       "UNAVAILABLE" if faults.error_status == 503 else "INTERNAL")


def _maybe_lose(emu: Emulator, op: Operation) -> None:
    """After a successful append, hang past the client's timeout so its answer is lost."""
    with emu.lock:
        lose = op is op_append and emu.faults.lose_appends > 0
        if lose:
            emu.faults.lose_appends -= 1
    if lose:
        time.sleep(emu.faults.lose_hang)
