"""The simulated LINE platform: chat history, webhook building and signing, API checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from ulid import ULID

from linebot_app.line.client import sdk_model_errors
from linebot_app.simulator.openapi import SpecChecker, limit_errors
from storage.sheets.sample import SIM_ORGANIZER_ID

log = logging.getLogger(__name__)
BOT_USER_ID = "U" + "f" * 28 + "b07f"
REPLY_TOKEN_SECONDS = 60
SPEC_DIR_CANDIDATES = ("../shared/fixtures/line-openapi", "shared/fixtures/line-openapi")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@dataclass(frozen=True)
class SimUser:
    """A simulated LINE user."""

    user_id: str
    name: str
    note: str


USERS = (
    SimUser("U" + "0" * 28 + "b001", "職員A", "総務課・ICT初心者"),
    SimUser("U" + "0" * 28 + "b002", "職員B", "情報政策課・経験者"),
    SimUser("U" + "0" * 28 + "b003", "職員C", "企画課・ICT初心者"),
    SimUser("U" + "0" * 28 + "b004", "職員D", "福祉課・経験者"),
    SimUser("U" + "0" * 28 + "b005", "見学者", "近隣の町の職員"),
    SimUser("U" + "0" * 28 + "c001", "住民", "問い合わせデモ"),
    SimUser(SIM_ORGANIZER_ID, "運営者", "admin_user_ids に登録済み"),
)


def sign(secret: str, body: bytes) -> str:
    """X-Line-Signature: base64 of HMAC-SHA256 over the exact body bytes."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def find_spec(name: str, explicit: str | Path | None = None) -> Path | None:
    """LINE's OpenAPI file, from LINE_OPENAPI_DIR or the shared fixtures beside the repo."""
    for folder in ([explicit] if explicit else []) + list(SPEC_DIR_CANDIDATES):
        path = Path(folder) / name
        if path.is_file():
            return path
    return None


@dataclass
class Platform:
    """In-memory state of the simulated platform (one process)."""

    secret: str
    token: str
    webhook_url: str | None = None
    spec_dir: str | Path | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    reply_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    retry_keys: set[str] = field(default_factory=set)
    any_reply_token: bool = False
    send_delay: float = 0.0  # seconds each push or multicast takes (a slow LINE, for drills)
    profile_delay: float = 0.0  # and each profile asked
    webhook_endpoint: str = ""
    richmenus: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_richmenu: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        api = find_spec("messaging-api.yml", self.spec_dir)
        hook = find_spec("webhook.yml", self.spec_dir)
        self.api_spec = SpecChecker(api) if api else None
        self.webhook_spec = SpecChecker(hook) if hook else None
        self._preset_richmenu()
        log.info("simulator validates Messaging API requests with %s", self.validation)

    @property
    def validation(self) -> str:
        """Which validation is active: LINE's OpenAPI file, or the SDK's request models."""
        return (f"LINE OpenAPI ({self.api_spec.path})" if self.api_spec
                else "line-bot-sdk request models (OpenAPI file not found)")

    def _preset_richmenu(self) -> None:
        """Show the repo's menu from the start, as if `python -m linebot_app richmenu` had run."""
        menu_file, image_file = DEPLOY / "richmenu.json", DEPLOY / "richmenu.png"
        if menu_file.is_file() and image_file.is_file():
            menu_id = self.add_richmenu(json.loads(menu_file.read_text(encoding="utf-8")))
            self.richmenus[menu_id]["image"] = image_file.read_bytes()
            self.default_richmenu = menu_id

    def add_richmenu(self, menu: dict[str, Any]) -> str:
        """Keep a created rich menu; returns its id."""
        menu_id = "richmenu-" + ULID().hex
        with self._lock:
            self.richmenus[menu_id] = {"menu": menu, "image": None, "type": ""}
        return menu_id

    # ---- history -----------------------------------------------------------------------
    def record(self, user_id: str, direction: str, kind: str, payload: Any) -> dict[str, Any]:
        """Add a line to a user's chat history."""
        with self._lock:
            entry = {"seq": len(self.entries) + 1, "user": user_id, "direction": direction,
                     "kind": kind, "payload": payload, "at": time.time()}
            self.entries.append(entry)
            return entry

    def history(self, user_id: str, after: int = 0) -> list[dict[str, Any]]:
        """A user's chat lines after a sequence number."""
        with self._lock:
            return [e for e in self.entries[after:] if e["user"] == user_id]

    # ---- the Messaging API side --------------------------------------------------------
    def check(self, endpoint: str, schema: str | None, body: Any) -> list[str]:
        """Validate a request body; violations are kept for the page and the tests."""
        problems = []
        if schema:
            problems = (self.api_spec.errors(schema, body) if self.api_spec
                        else sdk_model_errors(schema, body))
        problems += limit_errors(body) if isinstance(body, dict) else []
        if problems:
            with self._lock:
                self.violations.append({"endpoint": endpoint, "problems": problems,
                                        "at": time.time()})
        return problems

    def log_call(self, endpoint: str, headers: dict[str, str], body: Any) -> None:
        """Keep every API call, for tests and the benchmark."""
        with self._lock:
            self.calls.append({"endpoint": endpoint, "headers": headers, "body": body})

    def take_reply_token(self, token: str) -> str | None:
        """The user a reply token belongs to; each token works once, for a minute."""
        with self._lock:
            user_id, issued = self.reply_tokens.pop(token, (None, 0.0))
        if user_id and time.time() - issued <= REPLY_TOKEN_SECONDS:
            return user_id
        return "(load)" if self.any_reply_token else None

    def accept_retry_key(self, key: str | None) -> bool:
        """False when a retry key was seen before (LINE answers 409 then)."""
        if not key:
            return True
        with self._lock:
            if key in self.retry_keys:
                return False
            self.retry_keys.add(key)
            return True

    # ---- the webhook side --------------------------------------------------------------
    def event(self, user_id: str, kind: str, **fields: Any) -> dict[str, Any]:
        """A webhook event with every common field LINE sends."""
        event: dict[str, Any] = {
            "type": kind, "mode": "active", "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user_id},
            "webhookEventId": str(ULID()), "deliveryContext": {"isRedelivery": False},
            **fields,
        }
        if kind not in ("unfollow", "leave"):
            token = ULID().hex
            with self._lock:
                self.reply_tokens[token] = (user_id, time.time())
            event["replyToken"] = token
        return event

    def text_event(self, user_id: str, text: str) -> dict[str, Any]:
        """A text message event."""
        message = {"id": str(int(time.time() * 1000)), "type": "text", "text": text,
                   "quoteToken": ULID().hex}
        return self.event(user_id, "message", message=message)

    def deliver(self, event: dict[str, Any] | None, url: str) -> int:
        """Sign the exact bytes and POST them to the bot's webhook; returns the status.

        With no event, the body has an empty events list: LINE's webhook test.
        """
        body = json.dumps({"destination": BOT_USER_ID, "events": [event] if event else []},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if self.webhook_spec:
            for problem in self.webhook_spec.errors("CallbackRequest", json.loads(body)):
                log.warning("simulator built an event outside webhook.yml: %s", problem)
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-Line-Signature": sign(self.secret, body),
                   "User-Agent": "LineBotWebhook/2.0"}
        try:
            return requests.post(url, data=body, headers=headers, timeout=15).status_code
        except requests.RequestException as err:
            log.warning("webhook delivery failed: %s", err)
            return 0
