"""The emulator answers in Google's shape: replay gspread's recorded traffic and compare."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from emulator.server import create_emulator
from tests.conftest import FIXTURES, LiveServer, fixture_path

CASSETTES = FIXTURES / "gspread-cassettes"
SHEETS = "https://sheets.googleapis.com"
DRIVE_CREATE = "https://www.googleapis.com/drive/v3/files?"
BOOK = re.compile(r"/v4/spreadsheets/([^/?:]+)")


def _kind(method: str, uri: str, body: Any) -> str | None:
    """Which endpoint an interaction used; None for ones outside what we emulate."""
    path = uri.split("?")[0]
    if not path.startswith(SHEETS):
        return None
    tail = BOOK.sub("", path.removeprefix(SHEETS), count=1)
    kinds = {("GET", ""): "metadata", ("GET", "/values:batchGet"): "batchGet",
             ("POST", "/values:batchUpdate"): "values.batchUpdate"}
    if (method, tail) in kinds:
        return kinds[(method, tail)]
    if method == "POST" and tail == ":batchUpdate":
        requests_ = (body or {}).get("requests", [])
        ok = all(next(iter(r)) in ("addSheet", "updateSheetProperties") for r in requests_)
        return "batchUpdate" if ok and requests_ else None
    if tail.startswith("/values/"):
        if method == "POST" and tail.endswith(":append"):
            return "append"
        if method == "POST" and tail.endswith(":clear"):
            return "clear"
        return {"GET": "values.get", "PUT": "values.update"}.get(method)
    return None


def _shape(value: Any) -> Any:
    """Keys and types, recursively, without the values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def _compare(kind: str, got: dict[str, Any], want: dict[str, Any], exact_values: bool) -> list[str]:
    """Differences that matter: keys, range notation, values (when they can be compared)."""
    if kind == "metadata":
        got = {"sheets": [s.get("properties") for s in got["sheets"]]}
        want = {"sheets": [s.get("properties") for s in want.get("sheets", [])]}
    if kind == "batchUpdate":
        return [] if _shape(got) == _shape(want) else [f"shape {_shape(got)} != {_shape(want)}"]
    problems = []
    if set(got) != set(want):
        problems.append(f"keys {sorted(got)} != {sorted(want)}")
    for key in ("range", "updatedRange", "clearedRange", "tableRange"):
        if key in want and got.get(key) != want[key]:
            problems.append(f"{key} {got.get(key)!r} != {want[key]!r}")
    for key in ("updates", "valueRanges", "responses", "sheets"):
        if key in want and key in got:
            pairs = zip(got[key] if isinstance(got[key], list) else [got[key]],
                        want[key] if isinstance(want[key], list) else [want[key]], strict=False)
            for g, w in pairs:
                problems += _compare(kind + "." + key, g, w, exact_values)
    if exact_values and "values" in want and got.get("values") != want["values"]:
        problems.append(f"values {got.get('values')} != {want['values']}")
    return problems


def _replay(cassette: Path, base: str, emulator: Any, seen: Counter, failures: list[str]) -> None:
    raw_writes_only = True
    for item in json.loads(cassette.read_text())["interactions"]:
        req, res = item["request"], item["response"]
        body = _json(req.get("body"))
        if req["method"] == "POST" and req["uri"].startswith(DRIVE_CREATE):
            made = json.loads(res["body"]["string"])
            requests.post(f"{base}/_emulator/spreadsheets", timeout=10,
                          json={"id": made["id"], "title": made["name"]})
            continue
        kind = _kind(req["method"], req["uri"], body)
        if kind == "metadata" and "fields=" in req["uri"]:
            kind = None  # a filtered answer: not comparable
        if kind is None:
            if req["method"] != "GET" and "/drive/v3/files/" not in req["uri"]:
                return  # an edit we do not emulate: the states would part from here on
            continue
        if _unknown_book(emulator, req["uri"], res["status"]["code"]):
            return  # made by a Drive call we do not emulate (copy, import)
        if "USER_ENTERED" in req["uri"] or "USER_ENTERED" in (req.get("body") or ""):
            raw_writes_only = False
        want_status = res["status"]["code"]
        _private_if_forbidden(base, emulator, req["uri"], want_status)
        got = requests.request(req["method"], base + req["uri"].removeprefix(SHEETS),
                               json=body, timeout=10)
        if got.status_code != want_status:
            failures.append(f"{cassette.name}: {kind} status {got.status_code} != {want_status}")
            return
        want = json.loads(res["body"]["string"]) if res["body"].get("string") else {}
        if kind == "batchUpdate" and want_status == 200:
            _adopt_sheet_ids(emulator, got.json(), want)
        problems = _compare(kind, got.json(), want, raw_writes_only) if want_status == 200 else (
            [] if set(got.json()["error"]) == set(want["error"]) else ["error keys"])
        failures += [f"{cassette.name}: {kind}: {p}" for p in problems]
        seen[kind] += 1


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _unknown_book(emulator: Any, uri: str, status: int) -> bool:
    match = BOOK.search(uri)
    return bool(match) and status == 200 and match.group(1) not in emulator.books


def _private_if_forbidden(base: str, emulator: Any, uri: str, status: int) -> None:
    """A recorded 403 is a spreadsheet that exists but is not shared with the caller."""
    match = BOOK.search(uri)
    if status == 403 and match and match.group(1) not in emulator.books:
        requests.post(f"{base}/_emulator/spreadsheets", timeout=10,
                      json={"id": match.group(1), "shared_with": []})


def _adopt_sheet_ids(emulator: Any, got: dict[str, Any], want: dict[str, Any]) -> None:
    """Give new sheets the ids Google gave them, so later recorded requests find them."""
    book = emulator.books[got["spreadsheetId"]]
    for mine, theirs in zip(got["replies"], want["replies"], strict=False):
        if "addSheet" in mine:
            sheet = book.by_id(mine["addSheet"]["properties"]["sheetId"])
            sheet.sheet_id = theirs["addSheet"]["properties"]["sheetId"]


def test_emulator_answers_like_google_for_every_endpoint_we_use() -> None:
    fixture_path("gspread-cassettes")  # skips (or fails with REQUIRE_FIXTURES=1) without them
    app = create_emulator(read_quota=10**6, write_quota=10**6)
    seen: Counter = Counter()
    failures: list[str] = []
    with LiveServer(app) as server:
        for cassette in sorted(CASSETTES.glob("*.json")):
            _replay(cassette, server.url, app.extensions["sheets_emulator"], seen, failures)
    assert failures == []
    for kind in ("metadata", "values.get", "batchGet", "append", "values.update",
                 "values.batchUpdate", "batchUpdate", "clear"):
        assert seen[kind] >= 2, f"no recorded {kind} was replayed"
