"""The last good copy of the sheets, kept in DATA_DIR, for a start while the sheet is unreadable."""

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


def save(path: Path, sheets_json: str, read_at: float) -> None:
    """Replace the snapshot atomically (a crash leaves the old one or the new one)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f'{{"read_at": {read_at!r}, "sheets": {sheets_json}}}')
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> tuple[dict[str, list[list[Any]]], float] | None:
    """(raw sheets, when they were read), or None when there is no readable snapshot."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"), object_hook=_decode)
        return data["sheets"], float(data["read_at"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("the last good copy of the sheets at %s cannot be read: %s", path, err)
        return None
