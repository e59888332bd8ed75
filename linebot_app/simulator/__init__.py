"""The /simulator blueprint: a LINE chat in the browser, and the Messaging API the bot calls."""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from ulid import ULID

from linebot_app.simulator.platform import BOT_USER_ID, USERS, Platform

bp = Blueprint("simulator", __name__, url_prefix="/simulator", static_folder="static")
API = "/line/v2/bot"


def init_app(app: Flask, settings: Any, webhook_url: str | None = None,
             openapi_dir: Path | None = None) -> Platform:
    """Register the simulator on an app (simulator mode only)."""
    # Webhooks go to this process's own loopback port, never to whatever Host a request names.
    own = webhook_url or f"http://127.0.0.1:{settings.port}/callback"
    platform = Platform(secret=settings.channel_secret, token=settings.channel_access_token,
                        webhook_url=own, spec_dir=openapi_dir)
    app.extensions["line_simulator"] = platform
    app.register_blueprint(bp)
    return platform


def _platform() -> Platform:
    return current_app.extensions["line_simulator"]


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"message": message}), status


# ---- the page and its JSON API -----------------------------------------------------------
@bp.get("")
@bp.get("/")
def page() -> Response:
    """The chat page."""
    page_file = Path(bp.static_folder or "") / "index.html"
    return Response(page_file.read_text(encoding="utf-8"), mimetype="text/html")


@bp.get("/api/users")
def users() -> Response:
    """The simulated users to pick from."""
    return jsonify([{"userId": u.user_id, "name": u.name, "note": u.note} for u in USERS])


@bp.get("/api/history")
def history() -> Response:
    """A user's chat since a sequence number, and every API violation so far."""
    platform = _platform()
    after = request.args.get("after", default=0, type=int)
    return jsonify({"entries": platform.history(request.args.get("user", ""), after),
                    "violations": platform.violations[-50:],
                    "validating": True, "validation": platform.validation})


@bp.get("/api/calls")
def call_counts() -> Response:
    """How many Messaging API calls of each kind the simulator has served."""
    counts: dict[str, int] = {}
    for call in list(_platform().calls):
        counts[call["endpoint"]] = counts.get(call["endpoint"], 0) + 1
    return jsonify(counts)


@bp.post("/api/send")
def send() -> Response | tuple[Response, int]:
    """Turn a tap or a typed line into a signed webhook delivery to the bot."""
    platform = _platform()
    data = request.get_json(silent=True) or {}
    user_id, kind = str(data.get("user", "")), str(data.get("kind", "text"))
    if user_id not in {u.user_id for u in USERS}:
        return _error(400, "unknown user")
    event = _build(platform, user_id, kind, data)
    if event is None:
        return _error(400, f"unknown kind {kind}")
    url = platform.webhook_url or ""  # set by init_app: this app's own loopback port
    return jsonify({"status": platform.deliver(event, url)})


def _build(platform: Platform, user_id: str, kind: str, data: dict[str, Any]) -> Any:
    if kind == "text":
        text = str(data.get("text", ""))[:5000]
        platform.record(user_id, "user", "text", text)
        return platform.text_event(user_id, text)
    if kind == "postback":
        shown = data.get("displayText")
        if shown:
            platform.record(user_id, "user", "text", str(shown))
        return platform.event(user_id, "postback", postback={"data": str(data.get("data", ""))})
    if kind == "location":
        lat, lng = float(data.get("latitude", 0)), float(data.get("longitude", 0))
        platform.record(user_id, "user", "text", f"📍 位置情報 {lat:.5f}, {lng:.5f}")
        message = {"id": str(int(ULID()) % 10**15), "type": "location", "latitude": lat,
                   "longitude": lng, "title": "選んだ場所", "address": f"{lat:.5f}, {lng:.5f}"}
        return platform.event(user_id, "message", message=message)
    if kind in ("follow", "unfollow"):
        platform.record(user_id, "user", "system", "友だち追加" if kind == "follow" else "ブロック")
        fields = {"follow": {"isUnblocked": False}} if kind == "follow" else {}
        return platform.event(user_id, kind, **fields)
    return None


# ---- the Messaging API the bot calls --------------------------------------------------------
@bp.before_request
def _authorized() -> tuple[Response, int] | None:
    """Every Messaging API call needs the channel access token, as at LINE."""
    if not request.path.startswith(f"{bp.url_prefix}/line/"):
        return None
    if request.headers.get("Authorization", "") == f"Bearer {_platform().token}":
        return None
    return _error(401, "Authentication failed. Confirm that the access token in the "
                  "authorization header is valid.")


def _sent(messages: list[Any]) -> Response:
    return jsonify({"sentMessages": [{"id": str(ULID().hex[:18]), "quoteToken": ULID().hex}
                                     for _ in messages]})


def _checked(endpoint: str, schema: str, optional: bool = False
             ) -> tuple[dict[str, Any] | None, Any]:
    platform = _platform()
    body = request.get_json(silent=True)
    if body is None and optional and not request.get_data():
        body = {}
    platform.log_call(endpoint, dict(request.headers), body)
    if not isinstance(body, dict):
        return None, _error(400, "The request body has 1 error(s)")
    problems = platform.check(endpoint, schema, body)
    if problems:
        return None, (jsonify({"message": "The request body has error(s)",
                               "details": [{"message": p} for p in problems]}), 400)
    return body, None


@bp.post(f"{API}/message/reply")
def reply() -> Any:
    """Reply API: one use per reply token."""
    body, failure = _checked("reply", "ReplyMessageRequest")
    if failure:
        return failure
    platform = _platform()
    user_id = platform.take_reply_token(str(body.get("replyToken")))
    if user_id is None:
        return _error(400, "Invalid reply token")
    platform.record(user_id, "bot", "reply", body["messages"])
    return _sent(body["messages"])


@bp.post(f"{API}/message/push")
def push() -> Any:
    """Push API, with X-Line-Retry-Key handled as LINE does (409 on a repeat)."""
    body, failure = _checked("push", "PushMessageRequest")
    if failure:
        return failure
    time.sleep(_platform().send_delay)
    if not _platform().accept_retry_key(request.headers.get("X-Line-Retry-Key")):
        return _error(409, "The retry key is already accepted")
    _platform().record(str(body["to"]), "bot", "push", body["messages"])
    return _sent(body["messages"])


@bp.post(f"{API}/message/multicast")
def multicast() -> Any:
    """Multicast API: the same messages to up to 500 users."""
    body, failure = _checked("multicast", "MulticastRequest")
    if failure:
        return failure
    time.sleep(_platform().send_delay)
    if not _platform().accept_retry_key(request.headers.get("X-Line-Retry-Key")):
        return _error(409, "The retry key is already accepted")
    for user_id in body["to"]:
        _platform().record(str(user_id), "bot", "push", body["messages"])
    return jsonify({})


@bp.get(f"{API}/profile/<user_id>")
def profile(user_id: str) -> Any:
    """Profile API for the simulated users."""
    time.sleep(_platform().profile_delay)
    user = next((u for u in USERS if u.user_id == user_id), None)
    if user is None:
        return _error(404, "Not found")
    return jsonify({"userId": user.user_id, "displayName": user.name, "language": "ja",
                    "statusMessage": user.note})


@bp.post(f"{API}/chat/loading/start")
def loading() -> Any:
    """Loading animation: accepted and shown as a note in the chat."""
    body, failure = _checked("loading", "ShowLoadingAnimationRequest")
    if failure:
        return failure
    return jsonify({}), 202


# ---- rich menus -----------------------------------------------------------------------------
@bp.post(f"{API}/richmenu")
def create_richmenu() -> Any:
    """Create a rich menu (checked against RichMenuRequest)."""
    body, failure = _checked("richmenu", "RichMenuRequest")
    if failure:
        return failure
    return jsonify({"richMenuId": _platform().add_richmenu(body)})


@bp.post(f"{API}/richmenu/validate")
def validate_richmenu() -> Any:
    """Validate a rich menu object."""
    body, failure = _checked("richmenu/validate", "RichMenuRequest")
    return failure or jsonify({})


@bp.post(f"{API}/richmenu/<menu_id>/content")
def upload_richmenu_image(menu_id: str) -> Any:
    """Upload the menu's image (LINE takes it on its api-data host)."""
    entry = _platform().richmenus.get(menu_id)
    if entry is None:
        return _error(404, "Not found")
    entry["image"], entry["type"] = request.get_data(), request.content_type or ""
    _platform().log_call("richmenu/content", dict(request.headers), None)
    return jsonify({})


@bp.get(f"{API}/richmenu/list")
def list_richmenus() -> Any:
    """Every rich menu."""
    menus = [{"richMenuId": k, **v["menu"]} for k, v in _platform().richmenus.items()]
    return jsonify({"richmenus": menus})


@bp.delete(f"{API}/richmenu/<menu_id>")
def delete_richmenu(menu_id: str) -> Any:
    """Delete a rich menu."""
    platform = _platform()
    if platform.richmenus.pop(menu_id, None) is None:
        return _error(404, "Not found")
    if platform.default_richmenu == menu_id:
        platform.default_richmenu = None
    return jsonify({})


@bp.post(f"{API}/user/all/richmenu/<menu_id>")
def set_default_richmenu(menu_id: str) -> Any:
    """Make a menu the default; like LINE, only once it has an image."""
    entry = _platform().richmenus.get(menu_id)
    if entry is None:
        return _error(404, "Not found")
    if not entry["image"]:
        return _error(400, "must upload richmenu image before applying it to user")
    _platform().default_richmenu = menu_id
    return jsonify({})


@bp.get(f"{API}/user/all/richmenu")
def get_default_richmenu() -> Any:
    """The default menu's id."""
    menu_id = _platform().default_richmenu
    return jsonify({"richMenuId": menu_id}) if menu_id else _error(404, "no default rich menu")


@bp.get("/api/richmenu")
def page_richmenu() -> Response:
    """The default menu for the page to draw under the chat."""
    platform = _platform()
    entry = platform.richmenus.get(platform.default_richmenu or "")
    if entry is None:
        return jsonify({})
    return jsonify({"richMenuId": platform.default_richmenu, **entry["menu"],
                    "image": f"/simulator/api/richmenu/{platform.default_richmenu}/image"})


@bp.get("/api/richmenu/<menu_id>/image")
def page_richmenu_image(menu_id: str) -> Response | tuple[Response, int]:
    """The menu's image."""
    entry = _platform().richmenus.get(menu_id)
    if entry is None or not entry["image"]:
        return _error(404, "Not found")
    return Response(entry["image"], mimetype=entry["type"] or "image/png")


# ---- the channel: bot info and the webhook endpoint ---------------------------------------
@bp.get(f"{API}/info")
def bot_info() -> Any:
    """Bot info, as for a token check."""
    return jsonify({"userId": BOT_USER_ID, "basicId": "@000simbot",
                    "displayName": "セミナー案内ボット (シミュレーター)", "chatMode": "bot",
                    "markAsReadMode": "auto"})


@bp.get(f"{API}/channel/webhook/endpoint")
def get_webhook() -> Any:
    """The webhook URL on record."""
    endpoint = _platform().webhook_endpoint
    return jsonify({"endpoint": endpoint, "active": bool(endpoint)})


@bp.put(f"{API}/channel/webhook/endpoint")
def set_webhook() -> Any:
    """Set the webhook URL (the simulator then delivers there)."""
    body, failure = _checked("webhook/endpoint", "SetWebhookEndpointRequest")
    if failure:
        return failure
    if not str(body["endpoint"]).startswith("https://") and not _loopback(body["endpoint"]):
        return _error(400, "Invalid webhook endpoint URL")
    _platform().webhook_endpoint = body["endpoint"]
    return jsonify({})


@bp.post(f"{API}/channel/webhook/test")
def test_webhook() -> Any:
    """Send a signed webhook with no events to the endpoint and report what came back."""
    body, failure = _checked("webhook/test", "TestWebhookEndpointRequest", optional=True)
    if failure:
        return failure
    url = body.get("endpoint") or _platform().webhook_endpoint
    status = _platform().deliver(None, url) if url else 0
    return jsonify({"success": status == 200, "timestamp": _now_iso(), "statusCode": status,
                    "reason": "OK" if status == 200 else "COULD_NOT_CONNECT" if not status
                    else "ERROR_STATUS_CODE", "detail": str(status)})


def _loopback(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "http://localhost"))


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
