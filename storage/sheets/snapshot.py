"""The last good copy of the sheets, for a start while the sheet is unreadable: in a file in
DATA_DIR, or in Firestore (storage.firestore.client.FirestoreSnapshot) when instances share state."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_TYPES = {"datetime": dt.datetime, "date": dt.date, "time": dt.time}


def _encode(value: Any) -> Any:
    for name, kind in _TYPES.items():
        if type(value) is kind:
            return {"$": name, "v": value.isoformat()}
    return str(value)  # anything else a backend might give comes back as its text


def _decode(obj: dict[str, Any]) -> Any:
    kind = _TYPES.get(obj.get("$", "")) if set(obj) == {"$", "v"} else None
    return kind.fromisoformat(obj["v"]) if kind else obj


def dumps(raw: dict[str, list[list[Any]]]) -> str:
    """The raw sheets as JSON, cell types (dates and times) kept."""
    return json.dumps(raw, ensure_ascii=False, default=_encode, sort_keys=True)


def loads(text: str) -> dict[str, list[list[Any]]]:
    """The raw sheets from dumps' JSON, cell types restored."""
    return json.loads(text, object_hook=_decode)


class FileSnapshot:
    """The copy kept in a file in DATA_DIR."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        """Where the copy is kept, for logs."""
        return str(self.path)

    def save(self, sheets_json: str, read_at: float) -> None:
        """Replace the copy atomically (a crash leaves the old one or the new one)."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(f'{{"read_at": {read_at!r}, "sheets": {sheets_json}}}')
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> tuple[dict[str, list[list[Any]]], float] | None:
        """(raw sheets, when they were read), or None when there is no readable copy."""
        try:
            data = loads(self.path.read_text(encoding="utf-8"))
            return data["sheets"], float(data["read_at"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("the last good copy of the sheets at %s cannot be read: %s", self.path, err)
            return None
