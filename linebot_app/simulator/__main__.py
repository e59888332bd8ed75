"""Run the simulator alone (for load tests): python -m linebot_app.simulator --port 9000."""

from __future__ import annotations

import argparse
import sys

from linebot_app.simulator.standalone import run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m linebot_app.simulator")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--webhook", default="http://127.0.0.1:8000/callback")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--any-reply-token", action="store_true",
                        help="accept reply tokens it did not issue (webhooks sent by a load tool)")
    parser.add_argument("--no-validation", action="store_true")
    parser.add_argument("--send-delay-ms", type=float, default=0.0,
                        help="make each push and multicast take this long (a slow LINE)")
    parser.add_argument("--profile-delay-ms", type=float, default=0.0,
                        help="make each profile call take this long")
    sys.exit(run(parser.parse_args()))
