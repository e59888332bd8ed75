"""The default rich menu: LINE's limits checked before anything is uploaded."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

MENU_FILE = Path("deploy/richmenu.json")
IMAGE_FILE = Path("deploy/richmenu.png")
MAX_IMAGE_BYTES = 1024 * 1024
MAX_AREAS = 20
MAX_CHAT_BAR = 14


def image_size(data: bytes) -> tuple[str, int, int]:
    """(content type, width, height) of a PNG or JPEG, read from its header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data[:2] == b"\xff\xd8":
        return "image/jpeg", *_jpeg_size(data)
    raise ValueError("画像は PNG か JPEG にしてください")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    at = 2
    while at + 9 < len(data):
        marker, length = data[at + 1], struct.unpack(">H", data[at + 2:at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        at += 2 + length
    raise ValueError("JPEG の大きさを読めません")


def problems(menu: dict[str, Any], image: bytes) -> list[str]:
    """Every way the menu or its image breaks LINE's rules."""
    found = []
    size = menu.get("size", {})
    width, height = size.get("width", 0), size.get("height", 0)
    if not (800 <= width <= 2500 and height >= 250 and width / max(height, 1) >= 1.45):
        found.append(f"size {width}x{height}: 幅800〜2500, 高さ250以上, 幅/高さ1.45以上にしてください")
    if len(menu.get("chatBarText", "")) > MAX_CHAT_BAR:
        found.append(f"chatBarText は{MAX_CHAT_BAR}文字以内にしてください")
    areas = menu.get("areas", [])
    if not 1 <= len(areas) <= MAX_AREAS:
        found.append(f"areas は1〜{MAX_AREAS}個にしてください")
    for n, area in enumerate(areas):
        b = area.get("bounds", {})
        if b.get("x", 0) + b.get("width", 0) > width or b.get("y", 0) + b.get("height", 0) > height:
            found.append(f"areas[{n}] が画像の外にはみ出しています")
    if len(image) > MAX_IMAGE_BYTES:
        found.append("画像は1MB以下にしてください")
    try:
        _, w, h = image_size(image)
        if (w, h) != (width, height):
            found.append(f"画像の大きさ {w}x{h} が size {width}x{height} と違います")
    except ValueError as err:
        found.append(str(err))
    return found


def load(menu_file: Path = MENU_FILE, image_file: Path = IMAGE_FILE) -> tuple[dict[str, Any], bytes]:
    """The menu definition and its image."""
    return json.loads(menu_file.read_text(encoding="utf-8")), image_file.read_bytes()
