"""python -m emulator --port 8085: serve the Sheets API emulator on loopback."""

from __future__ import annotations

import argparse

from werkzeug.serving import make_server

from emulator.model import Spreadsheet
from emulator.server import create_emulator


def main() -> None:
    """Parse options and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m emulator")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--minute", type=float, default=60.0, help="length of a quota minute, s")
    parser.add_argument("--read-quota", type=int, default=60)
    parser.add_argument("--write-quota", type=int, default=60)
    parser.add_argument("--create", metavar="ID", action="append", default=[],
                        help="start with an empty spreadsheet of this id (repeatable)")
    args = parser.parse_args()
    app = create_emulator(minute=args.minute, read_quota=args.read_quota,
                          write_quota=args.write_quota)
    emu = app.extensions["sheets_emulator"]
    for sid in args.create:
        book = Spreadsheet(sid, sid)
        book.add_sheet("Sheet1").sheet_id = 0
        emu.books[sid] = book
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    print(f"Sheets API emulator on http://127.0.0.1:{args.port} "  # noqa: T201
          f"(SHEETS_EMULATOR_HOST=127.0.0.1:{args.port})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
