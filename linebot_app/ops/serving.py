"""Run a WSGI app under gunicorn from Python (make run, the standalone simulator)."""

from __future__ import annotations

from typing import Any


def run_gunicorn(app: Any, options: dict[str, Any]) -> None:
    """Serve app with these gunicorn settings until stopped."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()
