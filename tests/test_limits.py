"""LINE's message limits, applied before anything is sent."""

from __future__ import annotations

from linebot_app import messages as m


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
