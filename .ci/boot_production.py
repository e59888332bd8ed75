"""Boot the app the way production does, in a venv holding requirements.txt alone.

A runtime dependency listed only in requirements-dev.txt makes this fail."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, not .ci/

with tempfile.TemporaryDirectory() as tmp:
    from storage.sheets.sample import create_sample_workbook

    create_sample_workbook(Path(tmp) / "seminar.xlsx")  # production never makes one itself
    os.environ.update({"LINE_CHANNEL_SECRET": "ci-boot-check", "LINE_CHANNEL_ACCESS_TOKEN":
                       "ci-boot-check", "WORKBOOK_PATH": f"{tmp}/seminar.xlsx",
                       "DATA_DIR": f"{tmp}/var", "SCHEDULER": "off", "BOT_ENV": "production"})
    from google.cloud import firestore  # noqa: F401  STATE_BACKEND=firestore needs it installed

    from linebot_app import create_app

    client = create_app().test_client()
    answers = {path: client.get(path).status_code for path in ("/healthz", "/readyz")}
    sys.stdout.write(f"production boot on Python {sys.version.split()[0]}: {answers}\n")
    sys.exit(0 if answers == {"/healthz": 200, "/readyz": 200} else 1)
