"""Builders for LINE message objects (plain dicts), and LINE's limits applied to a reply."""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]

MAX_MESSAGES = 5
MAX_TEXT_UTF16 = 5000
MAX_QUICK_REPLY = 13
MAX_POSTBACK_DATA = 300
MAX_BUBBLES = 12
MAX_LABEL = 20
MAX_ALT_TEXT = 1500
MORE = "…(以下省略)"


def utf16_len(text: str) -> int:
    """Length as LINE counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def cut_utf16(text: str, limit: int, tail: str = "") -> str:
    """Shorten text to at most limit UTF-16 units, ending with tail when cut."""
    if utf16_len(text) <= limit:
        return text
    budget = limit - utf16_len(tail)
    out = []
    used = 0
    for ch in text:
        width = utf16_len(ch)
        if used + width > budget:
            break
        out.append(ch)
        used += width
    return "".join(out) + tail


def label(text: str) -> str:
    """A button or quick-reply label within LINE's 20 characters."""
    return cut_utf16(text, MAX_LABEL, "…")


def message_action(text: str, shown: str | None = None) -> dict[str, Any]:
    """An action that sends `text` as if the user typed it."""
    return {"type": "message", "label": label(shown or text), "text": text[:300]}


def command(shown: str, line: str, said: str | None = None) -> dict[str, Any]:
    """A button that runs a command line (ids and all) while the person sees words: the label
    `shown`, and `said` (default: the label) as what they sent."""
    return postback_action(shown, line, said or shown)


def titled(title: str, suffix: str) -> str:
    """A label naming something by its title, cut so that the suffix still shows."""
    room = MAX_LABEL - utf16_len(suffix)
    return cut_utf16(title, room, "…") + suffix


def postback_action(shown: str, data: str, display: str | None = None) -> dict[str, Any]:
    """A postback action; `data` is a command line, at most 300 characters."""
    action = {"type": "postback", "label": label(shown), "data": data[:MAX_POSTBACK_DATA]}
    if display:
        action["displayText"] = display[:300]
    return action


def uri_action(shown: str, uri: str) -> dict[str, Any]:
    """An action that opens a link."""
    return {"type": "uri", "label": label(shown), "uri": uri}


def location_action(shown: str) -> dict[str, Any]:
    """A quick-reply action that opens LINE's location picker."""
    return {"type": "location", "label": label(shown)}


def quick_replies(actions: list[dict[str, Any]]) -> dict[str, Any]:
    """A quickReply object with at most 13 items."""
    return {"items": [{"type": "action", "action": a} for a in actions[:MAX_QUICK_REPLY]]}


def text(body: str, quick: list[dict[str, Any]] | None = None) -> Message:
    """A text message, optionally with quick-reply actions."""
    msg: Message = {"type": "text", "text": body or "…"}
    if quick:
        msg["quickReply"] = quick_replies(quick)
    return msg


def with_quick(messages: list[Message], action: dict[str, Any]) -> list[Message]:
    """The messages with one more quick reply on the last (it replaces the 13th when full)."""
    if not messages:
        return [text("…", [action])]
    last = dict(messages[-1])
    items = list((last.get("quickReply") or {}).get("items", []))[: MAX_QUICK_REPLY - 1]
    last["quickReply"] = {"items": [*items, {"type": "action", "action": action}]}
    return [*messages[:-1], last]


def asks(messages: list[Message]) -> bool:
    """Whether a reply ends with choices to tap (postback quick replies: an event, a role, a
    registration to cancel), which a later message would hide: LINE shows quick replies on the
    last message only."""
    items = (messages[-1].get("quickReply") or {}).get("items", []) if messages else []
    return any(item["action"].get("type") == "postback" for item in items)


def flex(alt: str, contents: dict[str, Any], quick: list[dict[str, Any]] | None = None) -> Message:
    """A Flex message around one bubble or a carousel."""
    if contents.get("type") == "carousel":
        contents = {**contents, "contents": contents["contents"][:MAX_BUBBLES]}
    msg: Message = {"type": "flex", "altText": cut_utf16(alt, MAX_ALT_TEXT, "…"),
                    "contents": contents}
    if quick:
        msg["quickReply"] = quick_replies(quick)
    return msg


def fit(messages: list[Message]) -> list[Message]:
    """Apply LINE's limits: 5 messages, 5,000 UTF-16 units a text, quick replies on the last."""
    quick = next((m["quickReply"] for m in reversed(messages) if "quickReply" in m), None)
    out: list[Message] = []
    for msg in messages:
        msg = {k: v for k, v in msg.items() if k != "quickReply"}
        out.extend(_split_text(msg) if msg.get("type") == "text" else [msg])
    if len(out) > MAX_MESSAGES:
        out = out[:MAX_MESSAGES]
        last = out[-1]
        if last.get("type") == "text":
            last["text"] = cut_utf16(last["text"], MAX_TEXT_UTF16 - utf16_len(MORE)) + MORE
    if quick and out:
        out[-1]["quickReply"] = {"items": quick["items"][:MAX_QUICK_REPLY]}
    return out


def _split_text(msg: Message) -> list[Message]:
    body = msg["text"]
    parts = []
    while utf16_len(body) > MAX_TEXT_UTF16:
        head = cut_utf16(body, MAX_TEXT_UTF16)
        cut = head.rfind("\n", MAX_TEXT_UTF16 // 2)
        head = head[: cut + 1] if cut > 0 else head
        parts.append({**msg, "text": head})
        body = body[len(head):]
    parts.append({**msg, "text": body})
    return parts
