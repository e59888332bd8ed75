"""The bot as gunicorn runs it, with Google's certificate endpoint played by a fake that takes a
second and then fails, as an unreachable endpoint would (for the forged-token drill)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from linebot_app import create_app


class SlowCerts:
    """Records how often it is asked; answers 503 after a second."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> SimpleNamespace:
        self.asked += 1
        time.sleep(1.0)
        return SimpleNamespace(status=503, headers={}, data=b"")


def create() -> Any:
    app = create_app()
    app.extensions["seminar_google_request"] = SlowCerts()
    return app
