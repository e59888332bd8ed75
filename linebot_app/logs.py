"""Logging set-up and the masking of user ids."""

from __future__ import annotations

import logging
import sys


def mask(user_id: str | None) -> str:
    """Show only enough of a user id to tell users apart in logs."""
    if not user_id:
        return "-"
    return f"{user_id[:3]}…{user_id[-3:]}" if len(user_id) > 8 else "…"


def configure(level: str = "INFO") -> None:
    """Readable log lines on stderr (done by the entry points, never at import)."""
    root = logging.getLogger()
    if any(getattr(h, "_seminar", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._seminar = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
