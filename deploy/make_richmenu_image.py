"""Draw deploy/richmenu.png from deploy/richmenu.json (a one-off tool; needs Pillow and a
Japanese font, e.g. Debian's fonts-noto-cjk). The bot itself never runs this."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
COLORS = ("#06C755", "#05A847", "#048C3B", "#1B7F4B", "#2E9E62", "#3FB874")


def main() -> int:
    """Draw one labelled tile per area."""
    menu = json.loads((HERE / "richmenu.json").read_text(encoding="utf-8"))
    size = (menu["size"]["width"], menu["size"]["height"])
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 120)
    for area, color in zip(menu["areas"], COLORS, strict=False):
        b = area["bounds"]
        box = (b["x"] + 6, b["y"] + 6, b["x"] + b["width"] - 6, b["y"] + b["height"] - 6)
        draw.rounded_rectangle(box, radius=36, fill=color)
        center = (b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
        draw.text(center, area["action"]["label"], fill="white", font=font, anchor="mm")
    image.save(HERE / "richmenu.png", optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
