"""`check` lists every bad cell in Japanese, flags bad admin ids; odd locations get a clear reply."""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from domain.rows import CellError, Cells
from domain.schema import COLUMNS, Problem, parse_workbook
from linebot_app.features.facilities import UNREADABLE_LOCATION
from linebot_app.simulator.platform import sign
from storage.sheets.sample import create_sample_workbook
from tests.conftest import ADMIN, ROOT, SECRET, BotHarness, text_event

EVENTS = list(COLUMNS["events"])
SETTINGS = list(COLUMNS["settings"])


def _event_row(**cells: object) -> list[object]:
    row: dict[str, object] = {"id": "E5", "title": "勉強会", "date": "2027-01-10", **cells}
    return [row.get(column, "") for column in EVENTS]


def _problems(raw: dict[str, list[list[object]]]) -> list[Problem]:
    return parse_workbook(raw).problems


def _without_letters_outside_the_value(message: str) -> bool:
    """True when the message has no Latin word beyond the quoted value (so no Python text)."""
    return not re.search(r"[A-Za-z]", re.sub(r"「[^」]*」", "", message))


def test_a_row_with_two_bad_cells_gives_two_problems_in_japanese() -> None:
    org = parse_workbook({"events": [EVENTS, _event_row(start="25:00", capacity="たくさん")]})
    found = [p for p in org.problems if p.sheet == "events"]
    assert [(p.row, p.column) for p in found] == [(2, "start"), (2, "capacity")]
    assert str(found[0]) == "events!start 行2: 「25:00」は時刻として読めません (0〜23時)"
    assert "「たくさん」は人数として読めません" in str(found[1])
    assert all(_without_letters_outside_the_value(p.message) for p in found)
    assert org.events == []  # the bad row is still skipped


@pytest.mark.parametrize("column,typed,why", [
    ("date", "2020-13-01", "(月は1〜12)"), ("date", "2021-02-29", "(2月29日はありません)"),
    ("date", "0000-01-01", "(年は1〜9999)"), ("date", "来週", "日付として読めません"),
    ("start", "19:75", "(分は0〜59)"), ("start", "19:00〜25:00", "(0〜23時)"),
    ("end", "24時", "(0〜23時)"), ("deadline", "2027-01-08 99:00", "(0〜23時)"),
    ("capacity", "-1", "人数"), ("capacity", "1.5", "人数"), ("observer_capacity", "1" * 5000, "人数"),
])
def test_no_python_exception_text_reaches_the_organizer(column: str, typed: str, why: str) -> None:
    (problem,) = [p for p in _problems({"events": [EVENTS, _event_row(**{column: typed})]})
                  if p.sheet == "events"]
    assert problem.column == column and problem.row == 2
    assert why in problem.message and _without_letters_outside_the_value(problem.message), problem


def test_an_unexpected_parse_error_is_still_reported_in_japanese() -> None:
    def parse(value: object) -> object:
        raise ValueError("invalid literal for int() with base 10")

    cells = Cells({"capacity": "x1"})
    assert cells.read("capacity", parse) is None
    assert cells.errors == [CellError("capacity", "「x1」は読めない値です")]


@pytest.mark.parametrize("lat,lng", [("abc", "135"), ("1e400", "135"), ("nan", "135"),
                                     ("34", "181")])
def test_bad_coordinates_are_reported_with_the_value(lat: str, lng: str) -> None:
    header = list(COLUMNS["facilities"])
    row = ["図書館", "図書館", "", lat, lng, "", "", ""]
    (problem,) = [p for p in _problems({"facilities": [header, row]}) if p.sheet == "facilities"]
    bad = lat if problem.column == "lat" else lng
    assert f"「{bad}」は" in problem.message and _without_letters_outside_the_value(problem.message)


def test_bad_question_cells_are_all_reported_without_python_text() -> None:
    questions = list(COLUMNS["questions"])
    row = {"survey_id": "s1", "order": "abc", "key": "k", "text": "?", "pattern": "(",
           "min": "inf", "max": "2"}
    raw = {"surveys": [list(COLUMNS["surveys"]), ["s1", "調査"]],
           "questions": [questions, [row.get(c, "") for c in questions]]}
    found = [p for p in _problems(raw) if p.sheet == "questions"]
    why = {p.column: p.message for p in found}
    assert why.keys() == {"order", "pattern", "min"}
    assert "「abc」は数値" in why["order"] and "「inf」は数値" in why["min"]
    assert "「(」は正規表現として読めません" in why["pattern"]
    assert all(_without_letters_outside_the_value(p.message) for p in found)


def _admin_problems(value: str) -> list[Problem]:
    return [p for p in _problems({"settings": [SETTINGS, ["admin_user_ids", value]]})
            if p.sheet == "settings"]


def test_admin_ids_with_a_trailing_comma_and_a_malformed_entry_are_reported() -> None:
    found = _admin_problems(f"{ADMIN}, Uabc,")
    assert [(p.row, p.column) for p in found] == [(2, "value"), (2, "value")]
    assert "「Uabc」" in found[0].message and "無視" in found[0].message
    assert "3 番目が空" in found[1].message and "無視" in found[1].message


@pytest.mark.parametrize("value", [ADMIN, f"{ADMIN}、{ADMIN.replace('a', 'b')}", ""])
def test_well_formed_admin_ids_are_not_reported(value: str) -> None:
    assert _admin_problems(value) == []


def _bad_workbook(path) -> None:
    create_sample_workbook(path, dt.date(2026, 12, 1))
    wb = openpyxl.load_workbook(path)
    wb["events"].append(_event_row(start="25:00", capacity="たくさん"))
    settings = wb["settings"]
    for cells in settings.iter_rows(min_row=2):
        if cells[0].value == "admin_user_ids":
            cells[1].value = f"{ADMIN},Uabc,"
    wb.save(path)


def test_check_lists_each_problem_and_exits_non_zero(tmp_path) -> None:
    path = tmp_path / "wb.xlsx"
    _bad_workbook(path)
    env = {**os.environ, "WORKBOOK_PATH": str(path), "DATA_DIR": str(tmp_path / "var")}
    result = subprocess.run([sys.executable, "-m", "linebot_app", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "✗ events!start 行4: 「25:00」は時刻として読めません (0〜23時)" in lines
    assert any(line.startswith("✗ events!capacity 行4: 「たくさん」") for line in lines)
    admin = [line for line in lines if line.startswith("✗ settings!value")]
    assert len(admin) == 2 and "「Uabc」" in admin[0] and "空" in admin[1]
    assert "4 件の問題" in result.stdout and "Traceback" not in result.stderr


def _post_location(bot: BotHarness, lat: str, lng: str) -> int:
    event = text_event("x")
    event["message"] = {"id": "9", "type": "location", "latitude": "LAT", "longitude": "LNG"}
    body = json.dumps({"destination": "U" + "f" * 32, "events": [event]})
    body = body.replace('"LAT"', lat).replace('"LNG"', lng).encode()
    res = bot.client.post("/callback", data=body, headers={"X-Line-Signature": sign(SECRET, body),
                                                           "Content-Type": "application/json"})
    return res.status_code


@pytest.mark.parametrize("lat,lng", [("1e400", "135.2"), ("-1e400", "135.2"), ("NaN", "135.2"),
                                     ("34.7", "Infinity"), ("91", "135.2"), ("34.7", "181")])
def test_a_location_off_the_globe_gets_a_clear_reply(bot: BotHarness, lat: str, lng: str) -> None:
    assert _post_location(bot, lat, lng) == 200
    assert bot.line.last_texts() == [UNREADABLE_LOCATION]


def test_a_location_on_the_globe_still_gets_facilities(bot: BotHarness) -> None:
    assert _post_location(bot, "34.7040", "135.2060") == 200
    assert bot.line.last_texts()[0].startswith("近くの施設")


@pytest.mark.parametrize("module", ["domain.surveys", "domain.schema", "domain.rows"])
def test_each_sheets_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


PACKAGES = ("domain", "storage", "linebot_app")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Which of the project's modules each module imports, anywhere in it (lazy imports too);
    `from pkg import name` counts as pkg.name when that is a module."""
    paths = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    modules = {_module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                named = {f"{node.module}.{a.name}" for a in node.names} & modules
                found |= named or {node.module}
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        name = _module_name(path)
        graph[name] = {m for m in found if m in modules} - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path of modules, or [] when there is none."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return []
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return []

    return next((c for m in sorted(graph) if (c := visit(m, []))), [])


def test_the_project_has_no_import_cycle() -> None:
    graph = _import_graph()
    assert "linebot_app.features.surveys" in graph["linebot_app.features.feedback"]
    assert {"domain.schema", "storage.store", "storage.firestore.state"} <= set(graph)
    assert _cycle(graph) == []


def test_storage_never_imports_the_bot_and_the_domain_imports_neither() -> None:
    graph = _import_graph()
    wrong = {f"{a} -> {b}" for a, found in graph.items() for b in found
             if (a.startswith("storage") and b.startswith("linebot_app"))
             or (a.startswith("domain") and not b.startswith("domain"))}
    assert wrong == set()


def test_no_package_folder_holds_more_than_15_modules() -> None:
    folders = {p.parent for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    crowded = {str(f.relative_to(ROOT)): n for f in folders if (n := len(list(f.glob("*.py")))) > 15}
    assert crowded == {}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def _members(protocol: type) -> dict[str, inspect.Signature]:
    """A protocol's methods (its own and its bases'), with their signatures."""
    found = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or klass.__name__ in ("Protocol", "Generic"):
            continue
        found |= {name: inspect.signature(value) for name, value in vars(klass).items()
                  if callable(value) and not name.startswith("_")}
    return found


@pytest.mark.parametrize(("protocol", "implementations"), [
    ("storage.outbox.Outbox", ["storage.local.outbox.SqliteOutbox",
                               "storage.firestore.outbox.FirestoreOutbox"]),
    ("storage.state.BotState", ["storage.local.state.SqliteState",
                                "storage.firestore.state.FirestoreState"]),
])
def test_both_backends_implement_each_storage_protocol(protocol: str,
                                                       implementations: list[str]) -> None:
    def load(path: str) -> type:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    wanted = _members(load(protocol))
    assert len(wanted) >= 20
    for implementation in map(load, implementations):
        missing = [name for name in wanted if not hasattr(implementation, name)]
        assert missing == [], implementation
        differ = [name for name, signature in wanted.items()
                  if list(inspect.signature(getattr(implementation, name)).parameters)
                  != list(signature.parameters)]
        assert differ == [], implementation


def _anchor(heading: str) -> str:
    """A Markdown heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) >= 7
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto: are not ours to check here
            path, _, fragment = target.partition("#")
            found = (page.parent / path).resolve() if path else page
            if not found.exists():
                broken.append(f"{page.name}: {target}")
            elif fragment and found.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", found.read_text(encoding="utf-8"), re.M)
                if fragment not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_check_says_how_many_questions_went_unanswered(tmp_path) -> None:
    path = create_sample_workbook(tmp_path / "wb.xlsx")
    wb = openpyxl.load_workbook(path)
    sheet = wb.create_sheet("unanswered")
    sheet.append(["id", "first_asked_at", "last_asked_at", "text", "times", "status"])
    sheet.append(["q1", "2026-12-01T10:00:00", "2026-12-02T10:00:00", "ドローンは?", 3, ""])
    sheet.append(["q2", "2026-12-01T11:00:00", "2026-12-01T11:00:00", "プールは?", 1, ""])
    sheet.append(["q3", "2026-12-01T12:00:00", "2026-12-01T12:00:00", "献血は?", 2, "対応済み"])
    wb.save(path)
    env = {**os.environ, "WORKBOOK_PATH": str(path), "DATA_DIR": str(tmp_path / "var")}
    result = subprocess.run([sys.executable, "-m", "linebot_app", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert "unanswered questions: 2件" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
