"""Settings from the environment, read in one place: nothing else reads os.environ."""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.config import TIMEOUT_SECONDS, FirestoreConfig, GoogleConfig

# Development-only credentials used in simulator mode. They are not LINE credentials:
# the only thing that accepts them is our own simulator.
SIMULATOR_SECRET = "simulator-only-channel-secret"
SIMULATOR_TOKEN = "simulator-only-access-token"
DEFAULT_LINE_API = "https://api.line.me"
BACKENDS = ("workbook", "google")
STATE_BACKENDS = ("sqlite", "firestore")
CREDENTIALS = ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN")
ON_GOOGLE_CLOUD = ("GAE_ENV", "K_SERVICE")
MAX_SHEETS_TIMEOUT = 30.0  # gunicorn's worker timeout: a Sheets call must give up before it


class ConfigError(Exception):
    """One error naming every missing or bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SimulatorSettings:
    """The built-in LINE simulator (development only)."""

    openapi_dir: Path | None = None  # LINE_OPENAPI_DIR: LINE's OpenAPI specs to check calls against


@dataclass(frozen=True)
class TasksSettings:
    """Who may call /tasks/*: App Engine's cron, a TASKS_TOKEN bearer, or Cloud Scheduler's OIDC."""

    token: str = ""
    on_app_engine: bool = False  # GAE_ENV is set: only then is X-Appengine-Cron trusted
    audience: str = ""  # OIDC tokens are accepted when this is known
    invoker: str = ""  # and, when set, only from this service account

    def closed_reason(self) -> str:
        """Why /tasks/* answers 403 to everything, or '' when cron can get in."""
        if self.on_app_engine or self.token or self.audience:
            return ""
        return ("/tasks/flush と /tasks/remind はすべて 403 を返します: App Engine の外では "
                "TASKS_TOKEN が、Cloud Run では PUBLIC_URL か TASKS_AUDIENCE が要ります / "
                "/tasks/* refuse everything: set TASKS_TOKEN, or PUBLIC_URL / TASKS_AUDIENCE "
                "on Cloud Run")

    def loose_reason(self) -> str:
        """Why /tasks/* lets in more callers than it should, or ''."""
        if not self.audience or self.invoker:
            return ""
        return ("TASKS_INVOKER が未設定です: この URL 宛てに Google が署名したトークンなら、どの"
                "サービスアカウントでも /tasks/* を実行できます / TASKS_INVOKER is unset: any "
                "Google-signed token for this audience runs /tasks/*; set it to Cloud Scheduler's "
                "service account")


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment."""

    channel_secret: str
    channel_access_token: str
    simulator: bool  # simulator mode: no LINE credentials, the built-in simulator plays LINE
    line_api_base_url: str
    production: bool = False  # Cloud Run, App Engine or BOT_ENV=production
    sheets_backend: str = "workbook"
    workbook_path: Path = Path("data/seminar.xlsx")
    data_dir: Path = Path("var")
    port: int = 8000
    timezone: str = "Asia/Tokyo"
    public_url: str = ""
    sheets_cache_seconds: float = 60.0
    sheets_quota_per_minute: int = 60
    sheets_quota_window: float = 60.0
    sheets_backoff_cap: float = 64.0
    scheduler: bool = True
    scheduler_seconds: float = 60.0
    google: GoogleConfig = field(default_factory=GoogleConfig)
    state_backend: str = "sqlite"  # where the bot's own state lives: DATA_DIR, or Firestore
    firestore: FirestoreConfig = field(default_factory=FirestoreConfig)
    tasks: TasksSettings = field(default_factory=TasksSettings)
    simulator_settings: SimulatorSettings = field(default_factory=SimulatorSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, storage: bool = True,
                 **overrides: str) -> Settings:
        """Read and check every variable; raise ConfigError naming all problems.

        storage=False is for commands that only talk to LINE: a missing workbook is then
        no problem."""
        env = {**(os.environ if env is None else env), **overrides}
        problems: list[str] = []
        production = _production(env, problems)
        port = _number(env, "PORT", 8000, problems)
        secret, token, simulator = _credentials(env, production, problems)
        base = env.get("LINE_API_BASE_URL") or (
            f"http://127.0.0.1:{port}/simulator/line" if simulator else DEFAULT_LINE_API)
        backend, workbook = _sheets(env, storage and not simulator, problems)
        tz = env.get("BOT_TIMEZONE", "Asia/Tokyo") or "Asia/Tokyo"
        _check_timezone(tz, problems)
        every = _number(env, "SCHEDULER_SECONDS", 60.0, problems)
        if not 1 <= every <= 3600:
            problems.append(f"SCHEDULER_SECONDS must be between 1 and 3600, not {every}")
        public_url = _url(env, "PUBLIC_URL", problems)
        settings = cls(
            channel_secret=secret, channel_access_token=token, simulator=simulator,
            line_api_base_url=base.rstrip("/"), production=production, sheets_backend=backend,
            workbook_path=workbook, data_dir=Path(env.get("DATA_DIR") or "var"), port=port,
            timezone=tz, public_url=public_url,
            sheets_cache_seconds=_number(env, "SHEETS_CACHE_SECONDS", 60.0, problems),
            sheets_quota_per_minute=_number(env, "SHEETS_QUOTA_PER_MINUTE", 60, problems),
            sheets_quota_window=_number(env, "SHEETS_QUOTA_WINDOW_SECONDS", 60.0, problems),
            sheets_backoff_cap=_number(env, "SHEETS_BACKOFF_CAP_SECONDS", 64.0, problems),
            scheduler=_switch(env, "SCHEDULER", problems), scheduler_seconds=every,
            google=_google(env, backend, problems), tasks=_tasks(env, public_url, problems),
            state_backend=_state_backend(env, backend, production, problems),
            firestore=_firestore(env, problems),
            simulator_settings=_simulator(env, problems),
        )
        if problems:
            raise ConfigError(problems)
        return settings

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The bot's time zone."""
        return zoneinfo.ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Server:
    """What gunicorn_conf.py needs: where to listen and how many workers and threads."""

    bind: str
    workers: int
    threads: int


def server(env: Mapping[str, str] | None = None) -> Server:
    """HOST, PORT, WEB_CONCURRENCY and GUNICORN_THREADS for the gunicorn entry point."""
    env = os.environ if env is None else env
    problems: list[str] = []
    port = _number(env, "PORT", 8000, problems)
    workers = _number(env, "WEB_CONCURRENCY", 1, problems)
    threads = _number(env, "GUNICORN_THREADS", 8, problems)
    for name, value in (("WEB_CONCURRENCY", workers), ("GUNICORN_THREADS", threads)):
        if not 1 <= value <= 64:
            problems.append(f"{name} must be between 1 and 64, not {value}")
    if problems:
        raise ConfigError(problems)
    return Server(f"{env.get('HOST') or '0.0.0.0'}:{port}", workers, threads)


def cloud_project(env: Mapping[str, str] | None = None) -> str | None:
    """On App Engine or Cloud Run, the project to name in JSON logs ('' if unknown); None
    elsewhere, where logs are text."""
    env = os.environ if env is None else env
    if any(env.get(v) for v in ON_GOOGLE_CLOUD):
        return env.get("GOOGLE_CLOUD_PROJECT", "")
    return None


def _sheets(env: Mapping[str, str], need_workbook: bool, problems: list[str]
            ) -> tuple[str, Path]:
    """SHEETS_BACKEND and WORKBOOK_PATH; outside simulator mode the workbook must exist."""
    backend = env.get("SHEETS_BACKEND", "workbook") or "workbook"
    if backend not in BACKENDS:
        problems.append(f"SHEETS_BACKEND must be 'workbook' or 'google', not {backend!r}")
    workbook = Path(env.get("WORKBOOK_PATH") or "data/seminar.xlsx")
    if need_workbook and backend == "workbook" and not workbook.is_file():
        problems.append(f"WORKBOOK_PATH: no workbook at {workbook} (the sample workbook is "
                        "created only in simulator mode, without LINE credentials)")
    return backend, workbook


def _production(env: Mapping[str, str], problems: list[str]) -> bool:
    mode = (env.get("BOT_ENV") or "").strip().lower()
    if mode not in ("", "development", "production"):
        problems.append(f"BOT_ENV must be 'production' or 'development', not {env.get('BOT_ENV')!r}")
    return mode == "production" or any(env.get(v) for v in ON_GOOGLE_CLOUD)


def _where(env: Mapping[str, str]) -> str:
    """Why this process counts as production, for the error message."""
    for name in (*ON_GOOGLE_CLOUD, "BOT_ENV"):
        if env.get(name):
            return f"{name}={env[name]}"
    return ""


def _credentials(env: Mapping[str, str], production: bool, problems: list[str]
                 ) -> tuple[str, str, bool]:
    """(secret, token, simulator mode). No credentials at all is simulator mode, except in
    production; real credentials never run next to the simulator."""
    secret, token = (env.get(name, "") for name in CREDENTIALS)
    wants_simulator = (env.get("SIMULATOR") or "").strip()
    if wants_simulator not in ("", "0", "1"):
        problems.append(f"SIMULATOR must be 1 or unset, not {wants_simulator!r}")
    if not secret and not token:
        if production:
            problems.append(f"LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN are not set "
                            f"(required in production: {_where(env)}; the simulator is for "
                            "development only)")
            return "", "", False
        return SIMULATOR_SECRET, SIMULATOR_TOKEN, True
    if not secret:
        problems.append("LINE_CHANNEL_SECRET is not set (LINE_CHANNEL_ACCESS_TOKEN is)")
    if not token:
        problems.append("LINE_CHANNEL_ACCESS_TOKEN is not set (LINE_CHANNEL_SECRET is)")
    if wants_simulator == "1":
        problems.append("SIMULATOR=1 cannot run with LINE_CHANNEL_SECRET / "
                        "LINE_CHANNEL_ACCESS_TOKEN set: the simulator is for development and "
                        "uses its own credentials. Unset SIMULATOR, or unset both LINE variables")
    return secret, token, False


def _google(env: Mapping[str, str], backend: str, problems: list[str]) -> GoogleConfig:
    sid = (env.get("GOOGLE_SPREADSHEET_ID") or "").strip()
    if backend == "google" and not sid:
        problems.append("GOOGLE_SPREADSHEET_ID is not set (needed with SHEETS_BACKEND=google)")
    timeout = _number(env, "SHEETS_TIMEOUT_SECONDS", TIMEOUT_SECONDS, problems)
    if not 0 < timeout <= MAX_SHEETS_TIMEOUT:
        problems.append(f"SHEETS_TIMEOUT_SECONDS must be above 0 and at most "
                        f"{MAX_SHEETS_TIMEOUT:.0f}, not {timeout}")
    key_file = env.get("GOOGLE_APPLICATION_CREDENTIALS") or ""
    if backend == "google" and key_file and not Path(key_file).is_file():
        problems.append(f"GOOGLE_APPLICATION_CREDENTIALS: no key file at {key_file}")
    return GoogleConfig(spreadsheet_id=sid, timeout=timeout,
                        emulator_host=env.get("SHEETS_EMULATOR_HOST") or "", key_file=key_file,
                        on_google_cloud=any(env.get(v) for v in (*ON_GOOGLE_CLOUD, "GOOGLE_CLOUD_PROJECT")))


def _state_backend(env: Mapping[str, str], sheets: str, production: bool,
                   problems: list[str]) -> str:
    """STATE_BACKEND; Firestore needs its project, and in production a shared spreadsheet.
    Where the disk does not outlive the instance (Cloud Run, App Engine) Firestore is the
    default, and SQLite is refused unless ALLOW_EPHEMERAL_STATE=on says its loss is accepted."""
    ephemeral = next((v for v in ON_GOOGLE_CLOUD if env.get(v)), "")
    backend = (env.get("STATE_BACKEND") or ("firestore" if ephemeral else "sqlite")).strip().lower()
    if backend not in STATE_BACKENDS:
        problems.append(f"STATE_BACKEND must be 'sqlite' or 'firestore', not {env.get('STATE_BACKEND')!r}")
    allowed = _switch({"ALLOW_EPHEMERAL_STATE": env.get("ALLOW_EPHEMERAL_STATE") or "off"},
                      "ALLOW_EPHEMERAL_STATE", problems)  # unset: off
    if backend == "sqlite" and ephemeral and not allowed:
        problems.append(
            f"STATE_BACKEND=sqlite on a disk that does not outlive the instance ({ephemeral} is "
            "set: Cloud Run or App Engine): rows acknowledged but not yet in the sheet, "
            "consents and conversations are lost whenever the instance stops. Use "
            "STATE_BACKEND=firestore, or set ALLOW_EPHEMERAL_STATE=on to accept that loss")
    if backend == "firestore" and not (env.get("GOOGLE_CLOUD_PROJECT") or "").strip():
        problems.append("GOOGLE_CLOUD_PROJECT is not set (needed with STATE_BACKEND=firestore)")
    if backend == "firestore" and production and sheets == "workbook":
        problems.append("STATE_BACKEND=firestore is for several instances, which cannot share a "
                        "workbook file: use SHEETS_BACKEND=google")
    return backend


def _firestore(env: Mapping[str, str], problems: list[str]) -> FirestoreConfig:
    timeout = _number(env, "FIRESTORE_TIMEOUT_SECONDS", 5.0, problems)
    if not 0 < timeout <= MAX_SHEETS_TIMEOUT:
        problems.append(f"FIRESTORE_TIMEOUT_SECONDS must be above 0 and at most "
                        f"{MAX_SHEETS_TIMEOUT:.0f}, not {timeout}")
    return FirestoreConfig(project=(env.get("GOOGLE_CLOUD_PROJECT") or "").strip(),
                           database=(env.get("FIRESTORE_DATABASE") or "(default)").strip(),
                           namespace=(env.get("FIRESTORE_NAMESPACE") or "seminar").strip(),
                           timeout=timeout, emulator_host=env.get("FIRESTORE_EMULATOR_HOST") or "")


def _tasks(env: Mapping[str, str], public_url: str, problems: list[str]) -> TasksSettings:
    audience = _url(env, "TASKS_AUDIENCE", problems) or (public_url if env.get("K_SERVICE") else "")
    invoker = (env.get("TASKS_INVOKER") or "").strip()
    if invoker and "@" not in invoker:
        problems.append(f"TASKS_INVOKER must be a service account's email, not {invoker!r}")
    return TasksSettings(token=env.get("TASKS_TOKEN") or "", on_app_engine=bool(env.get("GAE_ENV")),
                         audience=audience, invoker=invoker)


def _simulator(env: Mapping[str, str], problems: list[str]) -> SimulatorSettings:
    folder = env.get("LINE_OPENAPI_DIR") or ""
    if folder and not Path(folder).is_dir():
        problems.append(f"LINE_OPENAPI_DIR: no folder at {folder}")
    return SimulatorSettings(Path(folder) if folder else None)


def _url(env: Mapping[str, str], name: str, problems: list[str]) -> str:
    value = (env.get(name) or "").strip().rstrip("/")
    if value and not value.startswith(("https://", "http://")):
        problems.append(f"{name} must be a URL starting with https://, not {value!r}")
    return value


def _number(env: Mapping[str, str], name: str, default: Any, problems: list[str]) -> Any:
    """Read a number of the default's type; a bad value is reported and the default kept."""
    try:
        return type(default)(env.get(name) or default)
    except ValueError:
        problems.append(f"{name} must be a number, not {env.get(name)!r}")
        return default


def _switch(env: Mapping[str, str], name: str, problems: list[str]) -> bool:
    """An on/off variable; unset means on."""
    value = (env.get(name) or "on").strip().lower()
    if value not in ("on", "off"):
        problems.append(f"{name} must be 'on' or 'off', not {env.get(name)!r}")
    return value != "off"


def _check_timezone(name: str, problems: list[str]) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(f"BOT_TIMEZONE is not a known time zone: {name!r}")
