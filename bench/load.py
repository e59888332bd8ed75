"""A bounded load generator: signed webhooks at a fixed rate, or as fast as possible."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ulid import ULID

from linebot_app.simulator.platform import sign

TEXTS = ("予定", "イベント", "ごみの収集日はいつ?", "ヘルプ", "予定 4/30", "図書館の開館時間")


def signed_bodies(secret: str, count: int, seed: int = 7,
                  text_for: Callable[[int], str] | None = None,
                  user_for: Callable[[int], str] | None = None) -> list[tuple[bytes, str]]:
    """count webhook bodies, each one text event (from a distinct user unless user_for says
    who), with signatures."""
    rng = random.Random(seed)
    bodies = []
    for n in range(count):
        text = text_for(n) if text_for else rng.choice(TEXTS)
        event = {"type": "message", "mode": "active", "timestamp": int(time.time() * 1000),
                 "source": {"type": "user",
                            "userId": user_for(n) if user_for else f"U{n:032x}"},
                 "webhookEventId": str(ULID()), "deliveryContext": {"isRedelivery": False},
                 "replyToken": ULID().hex,
                 "message": {"id": str(n), "type": "text", "text": text,
                             "quoteToken": ULID().hex}}
        body = json.dumps({"destination": "U" + "f" * 32, "events": [event]},
                          ensure_ascii=False).encode()
        bodies.append((body, sign(secret, body)))
    return bodies


@dataclass
class Result:
    """Latencies (seconds) and the wall time of one run."""

    latencies: list[float]
    elapsed: float
    errors: int
    replies: int = 0
    failed: list[int] = field(default_factory=list)  # bodies not answered 200 (not acknowledged)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        """A percentile in milliseconds."""
        if len(self.latencies) < 2:
            return 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1] * 1000


def run_load(url: str | list[str], bodies: list[tuple[bytes, str]], *, rate: float = 0.0,
             concurrency: int = 16, processes: int = 2, max_seconds: float = 60.0) -> Result:
    """Send the bodies from `processes` load-generator processes (bench.loadgen) at once, each
    with its share of the senders and of the bodies; given several URLs, process p sends to
    url[p % len(url)]. rate 0: as fast as the senders can (closed loop); else a fixed rate over
    all processes (open loop)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from bench import procs

    urls = [url] if isinstance(url, str) else url
    processes = max(1, min(processes, len(bodies)))
    started, outs = [], []
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        start_at = time.time() + 1.5  # every process has read its bodies by then
        for p in range(processes):
            share = bodies[p::processes]
            path, out = Path(tmp) / f"bodies-{p}", Path(tmp) / f"out-{p}.json"
            path.write_bytes(b"".join(sig.encode() + b"\t" + body + b"\n" for body, sig in share))
            args = [sys.executable, "-m", "bench.loadgen", "--url", urls[p % len(urls)],
                    "--bodies", str(path), "--out", str(out), "--start-at", str(start_at),
                    "--concurrency", str(max(1, concurrency // processes)),
                    "--max-seconds", str(max_seconds)]
            if rate:
                args += ["--rate", str(rate / processes), "--offset", str(p / rate)]
            started.append(subprocess.Popen(args, cwd=procs.ROOT, start_new_session=True))
            outs.append(out)
        limit = start_at + (len(bodies) / rate if rate else max_seconds) + 60
        for proc in started:
            try:
                proc.wait(timeout=max(1.0, limit - time.time()))
            except subprocess.TimeoutExpired:
                procs.stop(proc)
        parts = [json.loads(out.read_text()) if out.exists() else
                 {"latencies": [], "failed": list(range(len(bodies[p::processes]))),
                  "began": start_at, "ended": time.time()} for p, out in enumerate(outs)]
    latencies = [x for part in parts for x in part["latencies"]]
    # failed: the bodies not answered 200 (refused, timed out, or never sent): not acknowledged
    failed = sorted(p + i * processes for p, part in enumerate(parts) for i in part["failed"])
    elapsed = max(part["ended"] for part in parts) - min(part["began"] for part in parts)
    return Result(latencies, elapsed, len(failed), failed=failed)
