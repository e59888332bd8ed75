"""Residents' lookup: the three nearest facilities to a sent location, or those of a category."""

from __future__ import annotations

import math
from typing import Any

from domain.schema import Facility
from linebot_app.bot.context import Ctx
from linebot_app.line import messages as m
from linebot_app.understanding.intents import folded

EARTH_RADIUS_M = 6_371_000
NEAREST = 3
UNREADABLE_LOCATION = "位置情報を読み取れませんでした。もう一度送ってください。"


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def nearest(facilities: list[Facility], lat: float, lng: float, count: int = NEAREST
            ) -> list[tuple[Facility, float]]:
    """The closest facilities with their distances, nearest first."""
    ranked = sorted(((f, distance_m(lat, lng, f.lat, f.lng)) for f in facilities),
                    key=lambda pair: (pair[1], pair[0].name))
    return ranked[:count]


def _distance_text(meters: float) -> str:
    return f"約{meters / 1000:.1f}km" if meters >= 1000 else f"約{round(meters, -1):.0f}m"


def map_url(facility: Facility) -> str:
    """A map link that opens in any browser or the Maps app."""
    return f"https://www.google.com/maps/search/?api=1&query={facility.lat},{facility.lng}"


def bubble(facility: Facility, meters: float | None) -> dict[str, Any]:
    """One facility as a Flex bubble with a map button."""
    lines = [{"type": "text", "text": facility.name, "weight": "bold", "wrap": True},
             {"type": "text", "text": facility.category or "施設", "size": "sm",
              "color": "#06C755"}]
    details = [_distance_text(meters) if meters is not None else "", facility.address,
               facility.hours, f"電話 {facility.phone}" if facility.phone else ""]
    lines += [{"type": "text", "text": d, "size": "sm", "wrap": True, "color": "#555555"}
              for d in details if d]
    buttons = [m.uri_action("地図を開く", map_url(facility))]
    buttons += [m.uri_action("詳しく見る", facility.url)] if facility.url.startswith("https://") else []
    return {"type": "bubble",
            "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": lines},
            "footer": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": [
                {"type": "button", "style": "primary" if i == 0 else "secondary", "height": "sm",
                 "action": a} for i, a in enumerate(buttons)]}}


def is_place(lat: float, lng: float) -> bool:
    """Whether lat and lng are on the globe; false for inf (JSON's 1e400) and nan."""
    return -90 <= lat <= 90 and -180 <= lng <= 180


def on_location(ctx: Ctx, lat: float, lng: float) -> list[m.Message]:
    """The three nearest facilities to a sent location."""
    if not is_place(lat, lng):
        return [m.text(UNREADABLE_LOCATION)]
    found = nearest(ctx.org.facilities, lat, lng)
    if not found:
        return [m.text("施設の情報がまだ登録されていません。")]
    alt = "近くの施設: " + " / ".join(f"{f.name} {_distance_text(d)}" for f, d in found)
    return [m.flex(alt, {"type": "carousel", "contents": [bubble(f, d) for f, d in found]})]


def by_category(ctx: Ctx, query: str) -> list[m.Message] | None:
    """Facilities whose category is the query (e.g. 避難所), or None when none is."""
    key = folded(query)
    found = [f for f in ctx.org.facilities if f.category and folded(f.category) == key]
    if not found:
        return None
    alt = f"{query}の一覧: " + " / ".join(f.name for f in found[: m.MAX_BUBBLES])
    hint = m.text("位置情報を送ると、近い順に3件をお知らせします。",
                  [m.location_action("位置情報を送る")])
    carousel = {"type": "carousel", "contents": [bubble(f, None) for f in found]}
    return [m.flex(alt, carousel), hint]

