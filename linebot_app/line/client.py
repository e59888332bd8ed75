"""The only module that talks to the Messaging API (line-bot-sdk v3), with timeouts and limits."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

import urllib3
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
    MessagingApiBlob,
    RichMenuRequest,
    SetWebhookEndpointRequest,
    TestWebhookEndpointRequest,
)

from linebot_app.line.messages import Message, fit
from linebot_app.logs import mask

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0
RETRY_KEY_NAMESPACE = uuid.UUID("6f1c1a52-3c3b-4c52-9a0e-2f6f2e9b8d11")


class LineError(Exception):
    """LINE refused or could not be reached."""


def data_host(host: str) -> str:
    """Where images go: api-data.line.me for LINE itself, the same host for a simulator."""
    return host.replace("https://api.line.me", "https://api-data.line.me")


def retry_key(*parts: str) -> str:
    """A stable X-Line-Retry-Key for one logical send, so a resend is never delivered twice."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, "\x1f".join(parts)))


class LineClient:
    """Reply, push and profile calls through the SDK, each with a timeout."""

    def __init__(self, access_token: str, host: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self._config = Configuration(host=host, access_token=access_token)
        self._timeout = timeout
        self._api: MessagingApi | None = None
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}

    @property
    def api(self) -> MessagingApi:
        """The SDK client, made on first use."""
        with self._lock:
            if self._api is None:
                self._api = MessagingApi(ApiClient(self._config))
            return self._api

    def reply(self, reply_token: str, messages: list[Message]) -> bool:
        """Send a reply; False (and a log line) when LINE refuses it."""
        return self._send("reply", "/v2/bot/message/reply",
                          {"replyToken": reply_token, "messages": fit(messages)})

    def push(self, to: str, messages: list[Message], key: str) -> bool:
        """Push to one user with an X-Line-Retry-Key."""
        return self._send("push", "/v2/bot/message/push", {"to": to, "messages": fit(messages)},
                          key)

    def multicast(self, to: list[str], messages: list[Message], key: str) -> bool:
        """Multicast to at most 500 users with an X-Line-Retry-Key."""
        return self._send("multicast", "/v2/bot/message/multicast",
                          {"to": to, "messages": fit(messages)}, key)

    def show_loading(self, chat_id: str, seconds: int) -> bool:
        """LINE's loading animation in a 1:1 chat, until the reply or `seconds` (5 to 60, a
        multiple of 5)."""
        return self._send("loading", "/v2/bot/chat/loading/start",
                          {"chatId": chat_id, "loadingSeconds": seconds})

    def _send(self, what: str, path: str, body: dict[str, Any], key: str = "") -> bool:
        """POST our message dicts through the SDK's ApiClient (its auth, pool and errors)
        as they are: no request model is built and no response model read, since a send needs
        neither (LINE's limits are applied by fit, and the simulator checks against LINE's
        OpenAPI)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["X-Line-Retry-Key"] = key
        return self._call(what, lambda: self.api.api_client.call_api(
            path, "POST", header_params=headers, body=body, response_types_map={},
            auth_settings=["Bearer"], _return_http_data_only=True,
            _request_timeout=self._timeout))

    def install_rich_menu(self, menu: dict[str, Any], image: bytes, content_type: str
                          ) -> tuple[str, list[str]]:
        """Create the menu, upload its image, make it the default, delete the older ones."""
        return self._guarded(lambda: self._install_rich_menu(menu, image, content_type))

    def _install_rich_menu(self, menu: dict[str, Any], image: bytes, content_type: str
                           ) -> tuple[str, list[str]]:
        api = self.api
        old = [m.rich_menu_id for m in api.get_rich_menu_list(
            _request_timeout=self._timeout).richmenus]
        new = api.create_rich_menu(RichMenuRequest.from_dict(menu),
                                   _request_timeout=self._timeout).rich_menu_id
        blob = MessagingApiBlob(ApiClient(Configuration(
            host=data_host(self._config.host), access_token=self._config.access_token)))
        blob.set_rich_menu_image(new, image, _headers={"Content-Type": content_type},
                                 _request_timeout=self._timeout)
        api.set_default_rich_menu(new, _request_timeout=self._timeout)
        for menu_id in old:
            api.delete_rich_menu(menu_id, _request_timeout=self._timeout)
        return new, old

    def bot_name(self) -> str:
        """The bot's display name: proves the access token works."""
        return self._guarded(lambda: self.api.get_bot_info(
            _request_timeout=self._timeout).display_name)

    def webhook_endpoint(self) -> str:
        """The webhook URL LINE has on record."""
        return self._guarded(lambda: self.api.get_webhook_endpoint(
            _request_timeout=self._timeout).endpoint)

    def set_webhook_endpoint(self, url: str) -> None:
        """Point LINE's webhook at url."""
        request = SetWebhookEndpointRequest(endpoint=url)
        self._guarded(lambda: self.api.set_webhook_endpoint(
            request, _request_timeout=self._timeout))

    def test_webhook(self, url: str | None = None) -> tuple[bool, str]:
        """Ask LINE to call the webhook; (success, what LINE saw)."""
        request = TestWebhookEndpointRequest(endpoint=url) if url else None
        got = self._guarded(lambda: self.api.test_webhook_endpoint(
            request, _request_timeout=self._timeout))
        return bool(got.success), f"{got.status_code} {got.reason}"

    def _guarded(self, call: Any) -> Any:
        try:
            return call()
        except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            status = getattr(err, "status", None)
            raise LineError(f"{status or ''} {_reason(err)}".strip()) from err

    def display_name(self, user_id: str) -> str:
        """The user's LINE display name ('' when it cannot be had), cached per process."""
        if user_id not in self._names:
            try:  # read as JSON: no response model is built for the one field used
                got = self.api.api_client.call_api(
                    "/v2/bot/profile/{userId}", "GET", path_params={"userId": user_id},
                    header_params={"Accept": "application/json"}, response_types_map={},
                    auth_settings=["Bearer"], _request_timeout=self._timeout)
                self._names[user_id] = str(json.loads(got.raw_data)["displayName"])
            except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError,
                    KeyError, TypeError) as err:
                log.warning("profile of %s unavailable: %s", mask(user_id), _reason(err))
                return ""
        return self._names[user_id]

    def _call(self, what: str, send: Any) -> bool:
        try:
            send()
            return True
        except ApiException as err:
            if err.status == 409:  # retry key already accepted: the message went out before
                return True
            log.warning("%s refused: %s %s", what, err.status, _reason(err))
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            log.warning("%s failed: %s", what, _reason(err))
        return False


def sdk_model_errors(schema: str, body: Any) -> list[str]:
    """Validation by the SDK's own request model (which carries LINE's max_items), for when
    LINE's OpenAPI file is not at hand; [] for a body the model accepts."""
    from linebot.v3 import messaging

    model = getattr(messaging, schema, None)
    if model is None or not hasattr(model, "from_dict"):
        return []
    try:
        model.from_dict(body)
    except (ValueError, TypeError, AttributeError) as err:
        return [f"(SDK {schema}) {' '.join(str(err).split())[:300]}"]
    return []


def _reason(err: Exception) -> str:
    body = getattr(err, "body", None)
    return str(body)[:300] if body else type(err).__name__
