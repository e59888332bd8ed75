"""Logging: JSON with severity and trace on Google Cloud, readable text locally; no full user
id in any line, at any level (each is masked as the line is written)."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import sys

TRACE: contextvars.ContextVar[str] = contextvars.ContextVar("trace", default="-")


def mask(user_id: str | None) -> str:
    """Show only enough of a user id to tell users apart in logs."""
    if not user_id:
        return "-"
    return f"{user_id[:3]}…{user_id[-3:]}" if len(user_id) > 8 else "…"


def digest(user_id: str) -> str:
    """A short name for a user id that does not reveal it, for keys that are logged."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


USER_ID = re.compile(r"U[0-9a-f]{32}")  # a LINE user id, as it arrives in webhooks


def masked(text: str) -> str:
    """Text with every full user id in it masked."""
    return USER_ID.sub(lambda found: mask(found[0]), text)


def trace_from(header: str | None, fallback: str) -> str:
    """The trace id from X-Cloud-Trace-Context ('TRACE/SPAN;o=1'), else the fallback."""
    trace = (header or "").split("/", 1)[0].strip()
    return trace or fallback


class TraceFilter(logging.Filter):
    """Puts the current request's trace id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace = TRACE.get()
        return True


class CloudFormatter(logging.Formatter):
    """One JSON object a line, as Cloud Logging reads it."""

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry = {"severity": record.levelname, "message": record.getMessage(),
                 "logger": record.name, "time": self.formatTime(record)}
        trace = getattr(record, "trace", "-")
        if trace != "-":
            entry["logging.googleapis.com/trace"] = (
                f"projects/{self.project}/traces/{trace}" if self.project else trace)
        if record.exc_info:
            entry["message"] += "\n" + self.formatException(record.exc_info)
        entry["message"] = masked(entry["message"])
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal, with user ids masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(trace)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return masked(super().format(record))


def formatter(cloud_project: str | None) -> logging.Formatter:
    """JSON on Google Cloud (cloud_project is not None), text elsewhere."""
    if cloud_project is not None:
        return CloudFormatter(cloud_project)
    return TextFormatter()


def configure(cloud_project: str | None = None, level: str = "INFO") -> None:
    """Log to stdout (done by the entry points, never at import); config.cloud_project()
    says whether to write JSON for Cloud Logging."""
    root = logging.getLogger()
    if any(getattr(h, "_seminar", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter(cloud_project))
    handler.addFilter(TraceFilter())
    handler._seminar = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
