"""Settings from the environment, read in one place."""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Development-only credentials used in simulator mode. They are not LINE credentials:
# the only thing that accepts them is our own simulator.
SIMULATOR_SECRET = "simulator-only-channel-secret"
SIMULATOR_TOKEN = "simulator-only-access-token"
DEFAULT_LINE_API = "https://api.line.me"
BACKENDS = ("workbook", "google")


class ConfigError(Exception):
    """One error naming every missing or bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment."""

    channel_secret: str
    channel_access_token: str
    simulator: bool
    simulator_mode: bool
    line_api_base_url: str
    sheets_backend: str = "workbook"
    workbook_path: Path = Path("data/seminar.xlsx")
    data_dir: Path = Path("var")
    port: int = 8000
    timezone: str = "Asia/Tokyo"
    sheets_cache_seconds: float = 60.0
    google_spreadsheet_id: str = ""
    sheets_quota_per_minute: int = 60
    sheets_quota_window: float = 60.0
    tasks_token: str = ""
    sheets_backoff_cap: float = 64.0
    scheduler: bool = True
    scheduler_seconds: float = 60.0
    on_app_engine: bool = False  # GAE_ENV is set: only then is X-Appengine-Cron trusted
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable; raise ConfigError naming all problems."""
        env = os.environ if env is None else env
        problems: list[str] = []
        port = _number(env, "PORT", 8000, problems)
        secret, token, sim_mode = _credentials(env, problems)
        simulator = sim_mode or env.get("SIMULATOR", "") == "1"
        base = env.get("LINE_API_BASE_URL") or (
            f"http://127.0.0.1:{port}/simulator/line" if sim_mode else DEFAULT_LINE_API)
        backend = env.get("SHEETS_BACKEND", "workbook") or "workbook"
        if backend not in BACKENDS:
            problems.append(f"SHEETS_BACKEND must be 'workbook' or 'google', not {backend!r}")
        tz = env.get("BOT_TIMEZONE", "Asia/Tokyo") or "Asia/Tokyo"
        _check_timezone(tz, problems)
        cache = _number(env, "SHEETS_CACHE_SECONDS", 60.0, problems)
        quota = _number(env, "SHEETS_QUOTA_PER_MINUTE", 60, problems)
        window = _number(env, "SHEETS_QUOTA_WINDOW_SECONDS", 60.0, problems)
        backoff = _number(env, "SHEETS_BACKOFF_CAP_SECONDS", 64.0, problems)
        scheduler = _switch(env, "SCHEDULER", problems)
        every = _number(env, "SCHEDULER_SECONDS", 60.0, problems)
        if not 1 <= every <= 3600:
            problems.append(f"SCHEDULER_SECONDS must be between 1 and 3600, not {every}")
        if backend == "google" and not env.get("GOOGLE_SPREADSHEET_ID"):
            problems.append("GOOGLE_SPREADSHEET_ID is not set (needed with SHEETS_BACKEND=google)")
        if problems:
            raise ConfigError(problems)
        return cls(
            channel_secret=secret, channel_access_token=token, simulator=simulator,
            simulator_mode=sim_mode, line_api_base_url=base.rstrip("/"),
            sheets_backend=backend,
            workbook_path=Path(env.get("WORKBOOK_PATH") or "data/seminar.xlsx"),
            data_dir=Path(env.get("DATA_DIR") or "var"), port=port, timezone=tz,
            sheets_cache_seconds=cache, google_spreadsheet_id=env.get("GOOGLE_SPREADSHEET_ID", ""),
            sheets_quota_per_minute=quota, sheets_quota_window=window,
            tasks_token=env.get("TASKS_TOKEN", ""), sheets_backoff_cap=backoff,
            scheduler=scheduler, scheduler_seconds=every, on_app_engine=bool(env.get("GAE_ENV")),
            extra=dict(env),
        )

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The bot's time zone."""
        return zoneinfo.ZoneInfo(self.timezone)


def _credentials(env: Mapping[str, str], problems: list[str]) -> tuple[str, str, bool]:
    secret = env.get("LINE_CHANNEL_SECRET", "")
    token = env.get("LINE_CHANNEL_ACCESS_TOKEN", "")
    if not secret and not token:
        return SIMULATOR_SECRET, SIMULATOR_TOKEN, True
    if not secret:
        problems.append("LINE_CHANNEL_SECRET is not set (LINE_CHANNEL_ACCESS_TOKEN is)")
    if not token:
        problems.append("LINE_CHANNEL_ACCESS_TOKEN is not set (LINE_CHANNEL_SECRET is)")
    return secret, token, False


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
