"""One load-generator process: pre-signed webhook bodies from a file, sent over keep-alive
connections, either as fast as `--concurrency` senders can (closed loop) or at a fixed rate from
a given start time (open loop: latency counts from each request's scheduled time). It writes the
latencies to `--out` as JSON. bench.load runs several of these side by side, so that the load
generator's own Python does not share a GIL with the timing."""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 10.0


class Sender:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, signature: str) -> bool:
        """True when the bot answered 200."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=TIMEOUT_SECONDS)
            self.conn.request("POST", self.path, body, {
                "Content-Type": "application/json", "X-Line-Signature": signature})
            res = self.conn.getresponse()
            res.read()
            return res.status == 200
        except (OSError, http.client.HTTPException):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return False


def read_bodies(path: Path) -> list[tuple[bytes, str]]:
    """Lines of `signature<TAB>body`."""
    out = []
    for line in path.read_bytes().splitlines():
        signature, body = line.split(b"\t", 1)
        out.append((body, signature.decode("ascii")))
    return out


def send(url: str, bodies: list[tuple[bytes, str]], senders: int,
         due: Callable[[int], float | None], stop_at: float) -> dict:
    """Send every body from `senders` threads, each on its own connection. due(n) is when body
    n is due (open loop: its latency counts from then), or None to send it when a sender is
    free (closed loop: from when it is sent). No body is started after stop_at."""
    lock, todo = threading.Lock(), list(reversed(range(len(bodies))))
    latencies: list[float] = []
    answered: set[int] = set()

    def run() -> None:
        sender = Sender(url)
        while time.time() < stop_at:
            with lock:
                if not todo:
                    return
                n = todo.pop()
            scheduled = due(n)
            if scheduled is not None:
                _sleep_until(scheduled)
            began = scheduled if scheduled is not None else time.time()
            ok = sender.post(*bodies[n])
            took = time.time() - began
            with lock:
                latencies.append(took)
                if ok:
                    answered.add(n)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, stop_at - time.time()) + TIMEOUT_SECONDS + 5)
    with lock:  # failed: every body not answered 200, sent or not
        return {"latencies": list(latencies),
                "failed": [n for n in range(len(bodies)) if n not in answered]}


def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        time.sleep(delay)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--start-at", type=float, required=True, help="epoch seconds")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s; 0: full speed")
    parser.add_argument("--offset", type=float, default=0.0, help="seconds (fixed rate)")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    bodies = read_bodies(args.bodies)
    _sleep_until(args.start_at)
    if args.rate:  # body n is due at start_at + offset + n / rate
        first = args.start_at + args.offset
        result = send(args.url, bodies, args.concurrency, lambda n: first + n / args.rate,
                      first + len(bodies) / args.rate + 30)
    else:
        result = send(args.url, bodies, args.concurrency, lambda n: None,
                      args.start_at + args.max_seconds)
    result.update(began=args.start_at, ended=time.time())
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
