"""The naive writer to compare with: one gspread append_row per registration, gspread's own
BackOffHTTPClient, no timeout, as public LINE + Sheets bots do. Run as a child process."""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import gspread
import requests
from gspread.http_client import BackOffHTTPClient


class EmulatorSession(requests.Session):
    """Sends Google-bound requests to the emulator instead (the writer itself is unchanged)."""

    def __init__(self, host: str, user: str) -> None:
        super().__init__()
        self.host = host
        self.headers["Authorization"] = f"Bearer {user}"

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        url = url.replace("https://sheets.googleapis.com", f"http://{self.host}", 1)
        return super().request(method, url, *args, **kwargs)


def main() -> None:
    """Append `count` rows at `rate` per second, one call each, until done or out of time."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--sid", required=True)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    client = gspread.Client(auth=None, session=EmulatorSession(args.host, "naive@emulator.invalid"),
                            http_client=BackOffHTTPClient)
    sheet = client.open_by_key(args.sid).worksheet("registrations")
    done = [0]
    lock = threading.Lock()

    def one(n: int) -> None:
        sheet.append_row([f"N{n:05d}", "", f"E{n % 3 + 2}", f"U{n:032x}", "", "participant",
                          "beginner", "confirmed"], value_input_option="RAW",
                         insert_data_option="INSERT_ROWS")
        with lock:
            done[0] += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for n in range(args.count):
            time.sleep(max(0.0, start + n / args.rate - time.perf_counter()))
            pool.submit(one, n)
    print(json.dumps({"done": done[0], "seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
