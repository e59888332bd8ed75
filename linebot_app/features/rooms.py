"""Breakout rooms: beginners and experienced people never share a room; observers spread out."""

from __future__ import annotations

import math
from collections.abc import Sequence

from domain.schema import Registration

LEVEL_ROOM = {"beginner": "初心者", "experienced": "経験者"}


def _order(regs: Sequence[Registration]) -> list[Registration]:
    return sorted(regs, key=lambda r: (r.created_at, r.id))


def _split(people: list[Registration], size: int, label: str) -> list[tuple[str, list[str]]]:
    """Rooms of at most `size`, as even as possible (sizes differ by at most one)."""
    if not people:
        return []
    count = math.ceil(len(people) / size)
    rooms: list[list[str]] = [[] for _ in range(count)]
    for i, reg in enumerate(people):
        rooms[i % count].append(reg.id)
    return [(f"{label}{n}", ids) for n, ids in enumerate(rooms, start=1)]


def _seat_observers(rooms: list[tuple[str, list[str]]], observers: list[Registration],
                    size: int) -> list[tuple[str, list[str]]]:
    """Observers to the emptiest room with a free seat; the rest get rooms of their own."""
    left = []
    for reg in observers:
        free = [room for room in rooms if len(room[1]) < size]
        if free:
            min(free, key=lambda room: len(room[1]))[1].append(reg.id)
        else:
            left.append(reg)
    return rooms + _split(left, size, "見学")


def assign(regs: Sequence[Registration], event_id: str, size: int) -> dict[str, str]:
    """Registration id -> room name for the event's confirmed people; deterministic.

    No room ever holds more than `size` people, observers included.
    """
    size = max(1, size)
    confirmed = _order([r for r in regs if r.event_id == event_id and r.status == "confirmed"])
    rooms: list[tuple[str, list[str]]] = []
    for level, label in LEVEL_ROOM.items():
        group = [r for r in confirmed if r.role == "participant" and (r.level or "beginner") == level]
        rooms += _split(group, size, label)
    observers = [r for r in confirmed if r.role == "observer"]
    rooms = _seat_observers(rooms, observers, size)
    return {reg_id: name for name, ids in rooms for reg_id in ids}
