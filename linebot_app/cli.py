"""The command-line entry points: serve (make run) and check."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from linebot_app.config import ConfigError, Settings
from linebot_app.logs import configure

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    """Parse the sub-command and run it."""
    parser = argparse.ArgumentParser(prog="python -m linebot_app")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="start the bot (and the simulator in simulator mode)")
    sub.add_parser("check", help="check the configuration and the spreadsheet")
    args = parser.parse_args(argv)
    configure()
    return {"serve": serve, "check": check}[args.command]()


def _settings() -> Settings | None:
    try:
        return Settings.from_env()
    except ConfigError as err:
        for problem in err.problems:
            print(f"✗ {problem}")
        return None


def check() -> int:
    """Print every problem in the configuration and the sheets; non-zero if any."""
    settings = _settings()
    if settings is None:
        return 1
    from linebot_app.wiring import build_store

    store = build_store(settings)
    org = store.reload()
    print(f"✓ 設定 / configuration: backend={settings.sheets_backend} "
          f"({store.backend.describe()})")
    for problem in org.problems:
        print(f"✗ {problem}")
    if org.problems:
        print(f"{len(org.problems)} 件の問題 / problems")
        return 1
    print(f"✓ シート / sheets: イベント{len(org.events)}件, 予定{len(org.schedule)}件, "
          f"FAQ{len(org.faq)}件")
    return 0


def serve() -> int:
    """Run the app under gunicorn with the flusher hooks; print the URLs."""
    settings = _settings()
    if settings is None:
        return 1
    from gunicorn.app.base import BaseApplication

    from linebot_app import create_app, gunicorn_conf

    app = create_app(settings)
    base = f"http://127.0.0.1:{settings.port}"
    _announce(settings, base)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"127.0.0.1:{settings.port}")
            for key in ("worker_class", "threads", "timeout", "graceful_timeout"):
                self.cfg.set(key, getattr(gunicorn_conf, key))
            self.cfg.set("workers", 1)
            self.cfg.set("control_socket_disable", True)
            self.cfg.set("post_worker_init", gunicorn_conf.post_worker_init)
            self.cfg.set("worker_exit", gunicorn_conf.worker_exit)

        def load(self) -> Any:
            return app

    Server().run()
    return 0


def _announce(settings: Settings, base: str) -> None:
    if settings.simulator_mode:
        log.warning("SIMULATOR MODE: no LINE credentials are set; Messaging API calls go to "
                    "the built-in simulator at %s", settings.line_api_base_url)
    print(f"\n  Bot webhook : {base}/callback\n  Simulator   : {base}/simulator\n"
          f"  Workbook    : {settings.workbook_path}\n", flush=True)
