"""Shared fixtures: a fresh app per test, signed webhook builders, a recording LINE fake."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from ulid import ULID
from werkzeug.serving import make_server

from emulator.server import create_emulator
from linebot_app import create_app
from linebot_app.config import Settings
from linebot_app.simulator.openapi import SpecChecker
from linebot_app.simulator.platform import Platform, sign
from linebot_app.wiring import build_store
from storage.sheets.init_sheet import initialize
from storage.sheets.sample import create_sample_workbook
from storage.sheets.workbook import WorkbookBackend
from storage.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
SECRET = "test-channel-secret"
TOKEN = "test-access-token"
JST = dt.timezone(dt.timedelta(hours=9))
TODAY = dt.date(2026, 12, 1)
ADMIN = "U" + "0" * 28 + "a001"


T = TypeVar("T")

HANDLER_ERRORS: list[tuple[BaseException, Any]] = []
STORES: list[Store] = []  # closed after each test (a Firestore store has a listener to stop)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow (real servers, drills) first, so that parallel workers (make test runs
    three) start them early and the run does not end with one of them alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def eventually(check: Callable[[], T], timeout: float = 10.0, every: float = 0.05) -> T:
    """Call check until it returns something truthy without failing an assert; return that.

    The one way tests wait for something: past timeout seconds the test fails, naming the last
    falsy result or assertion.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
            last = f"it returned {value!r}"
        except AssertionError as err:
            last = f"it failed: {err}"
        if time.monotonic() >= deadline:
            pytest.fail(f"not true within {timeout:g}s: {last}")
        time.sleep(every)


def record_error(error: BaseException, event: Any) -> None:
    """The on_error hook of every test bot: remember the failure so the test fails on it."""
    HANDLER_ERRORS.append((error, event))


class _CoreErrors(logging.Handler):
    """Failures reported by the production hook of apps a test builds without record_error."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR and record.exc_info:
            HANDLER_ERRORS.append((record.exc_info[1], record.getMessage()))


@pytest.fixture(autouse=True)
def fail_on_handler_errors() -> Iterator[list[tuple[BaseException, Any]]]:
    """Any handler exception fails the test; a test that causes one on purpose clears the list."""
    HANDLER_ERRORS.clear()
    watcher = _CoreErrors()
    core_log = logging.getLogger("linebot_app.bot.core")
    core_log.addHandler(watcher)
    try:
        yield HANDLER_ERRORS
    finally:
        core_log.removeHandler(watcher)
    while STORES:
        STORES.pop().close()
    found, HANDLER_ERRORS[:] = list(HANDLER_ERRORS), []
    if found:
        lines = ["".join(traceback.format_exception(err)) for err, _ in found]
        pytest.fail(f"{len(found)} handler exception(s):\n" + "\n".join(lines), pytrace=False)


SHARED_FIRESTORE = "SEMINAR_TEST_FIRESTORE_HOST"  # the emulator the xdist workers share
_EMULATOR = pytest.StashKey[Any]()


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, the controller starts one Firestore emulator for every worker (they inherit
    its address), without waiting for it: the first worker that needs it waits."""
    from bench import procs

    if not getattr(config.option, "numprocesses", None) or hasattr(config, "workerinput") or \
            procs.firestore_missing():
        return
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="firestore-")) / "emulator.log"
    config.stash[_EMULATOR] = (procs.firestore_emulator(port, log, wait=False), log)
    os.environ[SHARED_FIRESTORE] = f"127.0.0.1:{port}"


def pytest_unconfigure(config: pytest.Config) -> None:
    from bench import procs

    proc, log = config.stash.get(_EMULATOR, (None, None))
    if proc is not None:
        procs.stop(proc)
        shutil.rmtree(log.parent, ignore_errors=True)
        del os.environ[SHARED_FIRESTORE]


@pytest.fixture(scope="session")
def firestore_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Google's Firestore emulator, one for the session (each test has a namespace of its own):
    the one the xdist controller started, or one of this process's own. Skipped where it is not
    installed, unless REQUIRE_FIRESTORE=1."""
    from bench import procs

    missing = procs.firestore_missing()
    if missing:
        if os.environ.get("REQUIRE_FIRESTORE") == "1":
            pytest.fail(f"{missing} (REQUIRE_FIRESTORE=1)", pytrace=False)
        pytest.skip(missing)
    shared = os.environ.get(SHARED_FIRESTORE)
    if shared:
        procs.wait_ready(f"http://{shared}/", None, 90)  # the controller started it
        yield shared
        return
    port = free_port()
    proc = procs.firestore_emulator(port, tmp_path_factory.mktemp("firestore") / "emulator.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        procs.stop(proc)


@pytest.fixture
def firestore_env(firestore_host: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings variables for STATE_BACKEND=firestore in a fresh namespace of the emulator."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_host)  # the client library reads it
    return {"STATE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "demo-seminar",
            "FIRESTORE_EMULATOR_HOST": firestore_host, "FIRESTORE_NAMESPACE": f"t{ULID()}"}


def fixture_path(*parts: str) -> Path:
    """A file under ../shared/fixtures, or skip the test saying why."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        reason = f"shared fixtures not found at {path}"
        if os.environ.get("REQUIRE_FIXTURES") == "1":
            pytest.fail(f"{reason} (REQUIRE_FIXTURES=1)", pytrace=False)
        pytest.skip(reason)
    return path


def openapi_env() -> dict[str, str]:
    """LINE_OPENAPI_DIR for a simulator that checks calls, when the specs are there (under
    REQUIRE_FIXTURES=1 they must be)."""
    folder = FIXTURES / "line-openapi"
    if os.environ.get("REQUIRE_FIXTURES") == "1":
        fixture_path("line-openapi")
    return {"LINE_OPENAPI_DIR": str(folder)} if folder.is_dir() else {}


@pytest.fixture(scope="session")
def api_spec() -> SpecChecker:
    """LINE's Messaging API schema."""
    return SpecChecker(fixture_path("line-openapi", "messaging-api.yml"))


class Clock:
    """A settable clock for the bot."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class RecordingLine:
    """A fake Messaging API client: it records exactly what the bot hands it, unchanged.

    Fitting messages to LINE's limits is the real client's job, so nothing here trims or
    splits. Each message is still checked on its own with the simulator's validator (LINE's
    OpenAPI file, else the SDK's models); limits of a whole request (five messages, 5,000
    UTF-16 units a text) are for tests that drive the real client against the simulator.
    """

    spec: SpecChecker | None = None
    replies: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    pushes: list[tuple[str, list[dict[str, Any]], str]] = field(default_factory=list)
    multicasts: list[tuple[list[str], list[dict[str, Any]], str]] = field(default_factory=list)
    loadings: list[tuple[str, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    retry_keys: set[str] = field(default_factory=set)
    fail_on_call: int | None = None  # raise on this (1-based) multicast, after LINE took it

    def __post_init__(self) -> None:
        self._platform = Platform(secret=SECRET, token=TOKEN)
        self._platform.api_spec = self.spec  # None: the SDK's models, as the simulator does

    def _check(self, messages: list[dict[str, Any]]) -> None:
        for n, message in enumerate(messages):
            found = self._platform.check("message", "Message", message)
            self.violations += [f"messages[{n}]{p}" for p in found]

    def reply(self, token: str, messages: list[dict[str, Any]]) -> bool:
        messages = copy.deepcopy(messages)
        self._check(messages)
        self.replies.append((token, messages))
        return True

    def push(self, to: str, messages: list[dict[str, Any]], key: str) -> bool:
        messages = copy.deepcopy(messages)
        self._check(messages)
        if key not in self.retry_keys:  # LINE answers 409 to a repeated key and sends nothing
            self.retry_keys.add(key)
            self.pushes.append((to, messages, key))
        return True

    def show_loading(self, chat_id: str, seconds: int) -> bool:
        body = {"chatId": chat_id, "loadingSeconds": seconds}
        self.violations += self._platform.check("loading", "ShowLoadingAnimationRequest", body)
        self.loadings.append((chat_id, seconds))
        return True

    def multicast(self, to: list[str], messages: list[dict[str, Any]], key: str) -> bool:
        messages = copy.deepcopy(messages)
        self._check(messages)
        assert len(to) <= 500
        if key not in self.retry_keys:
            self.retry_keys.add(key)
            self.multicasts.append((list(to), messages, key))
        if self.fail_on_call is not None and len(self.multicasts) == self.fail_on_call:
            self.fail_on_call = None
            raise RuntimeError("the process died after LINE accepted the multicast")
        return True

    def received(self, user: str) -> list[str]:
        """Texts each push or multicast delivered to one user."""
        texts = [m.get("text") or m.get("altText", "") for to, msgs, _ in self.pushes
                 if to == user for m in msgs]
        return texts + [m.get("text") or m.get("altText", "") for to, msgs, _ in self.multicasts
                        if user in to for m in msgs]

    def display_name(self, user_id: str) -> str:
        return f"表示名{user_id[-3:]}"

    def last_texts(self) -> list[str]:
        """Texts of the last reply as the bot handed it over (alt text for Flex)."""
        _, messages = self.replies[-1]
        return [m.get("text") or m.get("altText", "") for m in messages]


def make_settings(tmp: Path, **env: str) -> Settings:
    """Settings for a test: the sample workbook (made here if missing) and DATA_DIR in tmp."""
    workbook = Path(env.get("WORKBOOK_PATH") or tmp / "seminar.xlsx")
    if not workbook.exists():
        create_sample_workbook(workbook, TODAY)
    base = {"LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "WORKBOOK_PATH": str(tmp / "seminar.xlsx"), "DATA_DIR": str(tmp / "var")}
    return Settings.from_env({**base, **env})


def make_store(settings: Settings, **kw: Any) -> Store:
    """A Store over the sample data (the workbook in tmp, or the emulated Google sheet), its
    state in DATA_DIR or in Firestore, flushing whenever asked and keeping no last good copy."""
    if not settings.workbook_path.exists():
        create_sample_workbook(settings.workbook_path, TODAY)
    options: dict[str, Any] = {"flush_interval": 0, "snapshot": None, **kw}
    if settings.sheets_backend == "google":
        options = {"backoff_cap": 0.5, **options}
    store = build_store(settings, **options)
    if isinstance(store.backend, WorkbookBackend):  # the same parse, without a child process
        store.backend.in_process = True  # (servers that tests start read through the child)
    if settings.sheets_backend == "google":
        initialize(store.backend, settings.workbook_path, ADMIN)  # init-sheet --admin
    STORES.append(store)
    return store


ORGANIZER_CALLER = {"Authorization": "Bearer organizer@example.com"}


class Emu:
    """A Sheets API emulator on loopback, reached only through its HTTP APIs."""

    def __init__(self, server: LiveServer) -> None:
        self.url = server.url
        self.host = server.url.removeprefix("http://")

    def create(self, sid: str = "BOOK", **kw: Any) -> str:
        requests.post(f"{self.url}/_emulator/spreadsheets", json={"id": sid, **kw}, timeout=10)
        return sid

    def rows(self, sheet: str, sid: str = "BOOK") -> list[dict[str, Any]]:
        """A sheet's data rows as dicts keyed by its header."""
        dump = requests.get(f"{self.url}/_emulator/spreadsheets/{sid}", timeout=10).json()
        rows = dump["sheets"][sheet]["rows"]
        return [dict(zip(rows[0], r, strict=False)) for r in rows[1:] if any(r)]

    def formulas(self, sheet: str, sid: str = "BOOK") -> list[list[int]]:
        dump = requests.get(f"{self.url}/_emulator/spreadsheets/{sid}", timeout=10).json()
        return dump["sheets"][sheet]["formulas"]

    def log(self, kind: str | None = None) -> list[dict[str, Any]]:
        entries = requests.get(f"{self.url}/_emulator/log", timeout=10).json()
        return [e for e in entries if kind is None or e.get("kind") == kind]

    def faults(self, **kw: Any) -> None:
        requests.post(f"{self.url}/_emulator/faults", json=kw, timeout=10)

    def quota(self, **kw: float) -> None:
        """Set the emulated minute (seconds) and the read/write quotas per caller."""
        requests.post(f"{self.url}/_emulator/quota", json=kw, timeout=10).raise_for_status()

    def frozen_rows(self, sheet: str, sid: str = "BOOK") -> int:
        dump = requests.get(f"{self.url}/_emulator/spreadsheets/{sid}", timeout=10).json()
        return dump["sheets"][sheet]["frozenRowCount"]

    def edit(self, sheet: str, cell: str, value: Any, sid: str = "BOOK") -> None:
        """An organizer types a value into one cell (through the Sheets API, as a person)."""
        res = requests.put(f"{self.url}/v4/spreadsheets/{sid}/values/{sheet}!{cell}",
                           params={"valueInputOption": "RAW"}, json={"values": [[value]]},
                           headers=ORGANIZER_CALLER, timeout=10)
        res.raise_for_status()

    def append(self, sheet: str, rows: list[list[Any]], sid: str = "BOOK") -> None:
        """An organizer adds rows under a sheet's table (through the Sheets API)."""
        res = requests.post(f"{self.url}/v4/spreadsheets/{sid}/values/{sheet}!A1:append",
                            params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
                            json={"values": rows}, headers=ORGANIZER_CALLER, timeout=10)
        res.raise_for_status()


@pytest.fixture
def emu() -> Iterator[Emu]:
    """A fresh emulator with an empty spreadsheet BOOK, shared with anyone."""
    with LiveServer(create_emulator()) as server:
        emulator = Emu(server)
        emulator.create("BOOK", title="セミナー運営")
        yield emulator


def google_env(emulator: Emu, **env: str) -> dict[str, str]:
    """Settings variables for the google backend against the emulator."""
    return {"SHEETS_BACKEND": "google", "GOOGLE_SPREADSHEET_ID": "BOOK",
            "SHEETS_EMULATOR_HOST": emulator.host, "SHEETS_TIMEOUT_SECONDS": "2", **env}


@dataclass
class BotHarness:
    """A fresh app with a recording LINE fake, driven by signed webhooks."""

    app: Any
    line: RecordingLine
    store: Store
    clock: Clock
    settings: Settings

    @property
    def client(self) -> Any:
        return self.app.test_client()

    def post(self, *events: dict[str, Any], secret: str = SECRET) -> Any:
        body = json.dumps({"destination": "U" + "f" * 32, "events": list(events)},
                          ensure_ascii=False).encode()
        res = self.client.post("/callback", data=body, headers={
            "X-Line-Signature": sign(secret, body), "Content-Type": "application/json"})
        self.work()
        return res

    def work(self) -> int:
        """What the delivery worker thread does after a webhook queued pushes: one pass."""
        return self.app.extensions["seminar_bot"].services.deliveries.work()

    def say(self, text: str, user: str = "U" + "1" * 32, **kw: Any) -> list[str]:
        """Send a text and return the reply's texts."""
        before = len(self.line.replies)
        assert self.post(text_event(text, user=user, **kw)).status_code == 200
        if len(self.line.replies) == before:
            return []
        return self.line.last_texts()

    def tap(self, data: str, user: str = "U" + "1" * 32) -> list[str]:
        """Send a postback and return the reply's texts."""
        before = len(self.line.replies)
        assert self.post(postback_event(data, user=user)).status_code == 200
        return self.line.last_texts() if len(self.line.replies) > before else []

    def consent(self, user: str) -> None:
        self.app.extensions["seminar_bot"].services.state.give_consent(user)

    def registered(self, user: str, event: str = "E1", status: str = "confirmed") -> None:
        """A registration row for the user, as if made before (e.g. for the past E1)."""
        self.store.add("registrations", {
            "id": f"R-{user[-6:]}-{event}", "created_at": "2020-04-01T10:00:00.000+09:00",
            "event_id": event, "user_id": user, "role": "participant", "level": "beginner",
            "status": status})

    def setting(self, key: str, value: str) -> None:
        """What an organizer does in the settings sheet: add a key and save the workbook."""
        import openpyxl

        self.store.drain(seconds=5)
        wb = openpyxl.load_workbook(self.settings.workbook_path)
        wb["settings"].append([key, value])
        wb.save(self.settings.workbook_path)
        self.store.reload()


def build_harness(tmp: Path, spec: SpecChecker | None = None, **env: str) -> BotHarness:
    """A harness over a fresh sample workbook in tmp."""
    settings = make_settings(tmp, **env)
    store = make_store(settings)
    line = RecordingLine(spec)
    clock = Clock(dt.datetime(2026, 12, 1, 10, 0, tzinfo=JST))
    app = create_app(settings, store=store, line=line, clock=clock, on_error=record_error)
    return BotHarness(app, line, store, clock, settings)


def _message_spec() -> SpecChecker | None:
    spec_file = FIXTURES / "line-openapi" / "messaging-api.yml"
    if os.environ.get("REQUIRE_FIXTURES") == "1":
        fixture_path("line-openapi", "messaging-api.yml")  # fails instead of losing validation
    return SpecChecker(spec_file) if spec_file.exists() else None


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[BotHarness]:
    """A bot whose every sent message is checked against LINE's schema when it is there."""
    harness = build_harness(tmp_path, _message_spec())
    yield harness
    assert harness.line.violations == []


@contextlib.contextmanager
def fresh_bot(**env: str) -> Iterator[BotHarness]:
    """A bot of its own in a temporary directory: one per Hypothesis example, since
    function-scoped fixtures such as `bot` are shared by every example of a test."""
    with tempfile.TemporaryDirectory() as tmp:
        harness = build_harness(Path(tmp), _message_spec(), **env)
        yield harness
        found, HANDLER_ERRORS[:] = list(HANDLER_ERRORS), []
        assert not found, f"handler exception(s): {[repr(err) for err, _ in found]}"
        assert harness.line.violations == []


def _base(kind: str, user: str, chat: str = "user", **fields: Any) -> dict[str, Any]:
    source: dict[str, Any] = {"type": chat, "userId": user}
    if chat == "group":
        source["groupId"] = "C" + "9" * 32
    event = {"type": kind, "mode": "active", "timestamp": 1767225600000, "source": source,
             "webhookEventId": str(ULID()), "deliveryContext": {"isRedelivery": False},
             "replyToken": ULID().hex, **fields}
    return event


def text_event(text: str, user: str = "U" + "1" * 32, chat: str = "user",
               mention_self: tuple[int, int] | None = None) -> dict[str, Any]:
    """A text message event as LINE sends it."""
    message: dict[str, Any] = {"id": "1", "type": "text", "text": text, "quoteToken": "q"}
    if mention_self:
        message["mention"] = {"mentionees": [{"index": mention_self[0], "length": mention_self[1],
                                              "type": "user", "isSelf": True}]}
    return _base("message", user, chat, message=message)


def postback_event(data: str, user: str = "U" + "1" * 32) -> dict[str, Any]:
    """A postback event."""
    return _base("postback", user, postback={"data": data})


def follow_event(user: str = "U" + "1" * 32) -> dict[str, Any]:
    """A follow event."""
    return _base("follow", user, follow={"isUnblocked": False})


def free_port() -> int:
    """A loopback port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The real app on a loopback port, served over HTTP in a thread."""

    def __init__(self, app: Any, port: int = 0) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.bot = app.extensions.get("seminar_bot")
        self.stops: list[threading.Event] = []

    def __enter__(self) -> LiveServer:
        self.thread.start()
        if self.bot:  # what gunicorn's post_worker_init starts beside the app
            self.stops.append(self.bot.services.deliveries.start())
        return self

    def __exit__(self, *exc: object) -> None:
        for stop in self.stops:
            stop.set()
        self.server.shutdown()
        self.thread.join(timeout=5)


def run_export(settings: Settings, data_dir: Path, event_id: str, out: Path) -> Any:
    """`python -m linebot_app export <event> --format csv` on a test's workbook, as an
    organizer runs it."""
    import subprocess
    import sys

    env = {**os.environ, "WORKBOOK_PATH": str(settings.workbook_path), "DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "linebot_app", "export", event_id, "--format",
                           "csv", "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
