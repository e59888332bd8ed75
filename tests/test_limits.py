"""LINE's message limits: the builders, fit(), and what the real client hands to LINE."""

from __future__ import annotations

from linebot_app.line import messages as m
from linebot_app.line.client import LineClient, retry_key
from tests.test_simulator import STAFF_A, STAFF_B, Sim, sim  # noqa: F401  (the live simulator)


def test_at_most_five_messages_and_the_cut_is_marked() -> None:
    out = m.fit([m.text(f"line {n}") for n in range(9)])
    assert len(out) == 5 and out[-1]["text"].endswith(m.MORE)


def test_long_text_is_split_within_5000_utf16_units() -> None:
    body = "😀" * 3000 + "\n" + "あ" * 4000  # the emoji count twice in UTF-16
    out = m.fit([m.text(body)])
    assert len(out) >= 2
    assert all(m.utf16_len(x["text"]) <= 5000 for x in out)
    assert "".join(x["text"] for x in out) == body


def test_text_too_long_for_five_messages_is_shortened_gracefully() -> None:
    out = m.fit([m.text("字" * 40000)])
    assert len(out) == 5 and all(m.utf16_len(x["text"]) <= 5000 for x in out)
    assert out[-1]["text"].endswith(m.MORE)


def test_quick_replies_go_on_the_last_message_only_and_at_most_13() -> None:
    actions = [m.message_action(str(n)) for n in range(20)]
    out = m.fit([m.text("a", actions), m.text("b")])
    assert "quickReply" not in out[0]
    assert len(out[1]["quickReply"]["items"]) == 13


def test_postback_data_is_at_most_300_characters() -> None:
    assert len(m.postback_action("x", "d" * 400)["data"]) == 300


def test_labels_are_at_most_20_characters() -> None:
    assert len(m.message_action("あ" * 30)["label"]) == 20


def test_carousel_holds_at_most_12_bubbles() -> None:
    bubble = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": []}}
    out = m.flex("alt", {"type": "carousel", "contents": [bubble] * 20})
    assert len(out["contents"]["contents"]) == 12


# ---- what reaches LINE: the real client over HTTP, checked by the simulator -----------------

def _client(live: Sim) -> LineClient:
    return LineClient(live.platform.token, f"{live.url}/simulator/line")


def _sent(live: Sim, user: str, kind: str) -> list[dict]:
    """The messages of the last reply or push the simulator accepted for user."""
    entries = [e for e in live.history(user) if e["direction"] == "bot" and e["kind"] == kind]
    assert entries, f"LINE received no {kind} for {user}"
    return entries[-1]["payload"]


def _within_limits(messages: list[dict]) -> None:
    assert 1 <= len(messages) <= m.MAX_MESSAGES
    assert all(m.utf16_len(x.get("text", "")) <= m.MAX_TEXT_UTF16 for x in messages)
    assert all("quickReply" not in x for x in messages[:-1])


def test_a_reply_of_nine_messages_reaches_line_as_five(sim: Sim) -> None:  # noqa: F811
    token = sim.platform.text_event(STAFF_A, "x")["replyToken"]
    assert _client(sim).reply(token, [m.text(f"line {n}") for n in range(9)])
    sent = _sent(sim, STAFF_A, "reply")
    _within_limits(sent)
    assert [x["text"] for x in sent[:4]] == ["line 0", "line 1", "line 2", "line 3"]
    assert sent[-1]["text"].endswith(m.MORE)


def test_a_long_push_reaches_line_split_and_whole(sim: Sim) -> None:  # noqa: F811
    body = "😀" * 3000 + "\n" + "あ" * 4000
    assert _client(sim).push(STAFF_A, [m.text(body)], retry_key("limits", "long"))
    sent = _sent(sim, STAFF_A, "push")
    _within_limits(sent)
    assert len(sent) >= 2 and "".join(x["text"] for x in sent) == body


def test_quick_replies_reach_line_on_the_last_message_only(sim: Sim) -> None:  # noqa: F811
    items = [{"type": "action", "action": m.message_action(str(n))} for n in range(20)]
    first = {"type": "text", "text": "a", "quickReply": {"items": items}}
    token = sim.platform.text_event(STAFF_A, "x")["replyToken"]
    assert _client(sim).reply(token, [first, m.text("b")])
    sent = _sent(sim, STAFF_A, "reply")
    _within_limits(sent)
    assert [i["action"]["text"] for i in sent[-1]["quickReply"]["items"]] == [
        str(n) for n in range(m.MAX_QUICK_REPLY)]


def test_a_multicast_reaches_line_within_limits(sim: Sim) -> None:  # noqa: F811
    messages = [m.text("字" * 40000)]
    assert _client(sim).multicast([STAFF_A, STAFF_B], messages, retry_key("limits", "multi"))
    for user in (STAFF_A, STAFF_B):
        sent = _sent(sim, user, "push")
        _within_limits(sent)
        assert len(sent) == 5 and sent[-1]["text"].endswith(m.MORE)


def test_the_loading_animation_reaches_line_as_its_spec_says(sim: Sim) -> None:  # noqa: F811
    assert _client(sim).show_loading(STAFF_A, 20)
    (call,) = [c for c in sim.platform.calls if c["endpoint"] == "loading"]
    assert call["body"] == {"chatId": STAFF_A, "loadingSeconds": 20}
