"""Command line: python -m linebot_app {serve,check}."""

from __future__ import annotations

import sys

from linebot_app.ops.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
