"""The simulator as its own server, in front of a bot that runs elsewhere."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

from flask import Flask

from linebot_app.simulator import init_app


def create_simulator_app(secret: str, token: str, webhook_url: str, *, any_reply_token: bool = False,
                         validate: bool = True, send_delay: float = 0.0,
                         profile_delay: float = 0.0) -> Flask:
    """A Flask app serving only the simulator page and its Messaging API."""
    app = Flask("line_simulator")
    settings = SimpleNamespace(channel_secret=secret, channel_access_token=token, port=0)
    platform = init_app(app, settings, webhook_url=webhook_url)
    platform.any_reply_token = any_reply_token
    platform.send_delay, platform.profile_delay = send_delay, profile_delay
    if not validate:
        platform.api_spec = None
    return app


def run(args: argparse.Namespace) -> int:
    """Serve on loopback with gunicorn threads (one process: the simulator keeps state in memory)."""
    from linebot_app.ops.serving import run_gunicorn

    app = create_simulator_app(args.secret, args.token, args.webhook,
                               any_reply_token=args.any_reply_token,
                               validate=not args.no_validation,
                               send_delay=args.send_delay_ms / 1000,
                               profile_delay=args.profile_delay_ms / 1000)
    run_gunicorn(app, {"bind": f"127.0.0.1:{args.port}", "worker_class": "gthread", "workers": 1,
                       "threads": 16, "loglevel": "warning", "control_socket_disable": True})
    return 0
