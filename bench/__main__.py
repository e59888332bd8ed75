"""make bench: understanding on the labelled queries beside a keyword matcher; a burst of
registrations on Google Sheets (one instance, then three on Firestore); what Firestore costs per
message and registration; then our bot (on sqlite and on Firestore) and the SDK-style echo bot,
measured side by side in one run."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import requests

from bench import procs
from bench.load import Result, fixed_rate, full_speed, signed_bodies
from sheets.sample import create_sample_workbook

SECRET = "bench-channel-secret"
TOKEN = "bench-access-token"


def _serve(app: str, port: int, sim_port: int, work: Path, name: str, workers: int,
           **extra: str) -> object:
    env = {"LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
           "LINE_API_BASE_URL": f"http://127.0.0.1:{sim_port}/simulator/line",
           "WORKBOOK_PATH": str(work / "seminar.xlsx"), "DATA_DIR": str(work / f"var-{name}"),
           "SCHEDULER": "off", **extra}  # as deployed (cron runs rounds): only webhooks are timed
    return procs.gunicorn(app, port, env, work / f"{name}.log", workers=workers)


def _replies(sim_port: int) -> int:
    counts = requests.get(f"http://127.0.0.1:{sim_port}/simulator/api/calls", timeout=10).json()
    return int(counts.get("reply", 0))


def _measure(url: str, args: argparse.Namespace, seed: int, sim_port: int) -> tuple[Result, Result]:
    warm = signed_bodies(SECRET, 100, seed)
    full_speed(url, warm, concurrency=8)
    before = _replies(sim_port)
    rated = fixed_rate(url, signed_bodies(SECRET, int(args.rate * args.seconds), seed + 1),
                       args.rate, args.seconds)
    fast = full_speed(url, signed_bodies(SECRET, args.requests, seed + 2), args.concurrency)
    rated.replies = _replies(sim_port) - before  # both phases' replies, as LINE received them
    return rated, fast


def _row(name: str, rated: Result, fast: Result) -> str:
    return (f"| {name:<10} | {fast.rate:8.1f} | {fast.pct(50):7.1f} | {fast.pct(99):7.1f} | "
            f"{rated.pct(50):12.1f} | {rated.pct(99):12.1f} | {rated.errors + fast.errors:6d} | "
            f"{rated.replies:7d} |")


def main() -> int:
    """Start the simulator, both bots under gunicorn, measure, print, stop."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sheets-count", type=int, default=3000)
    parser.add_argument("--sheets-seconds", type=float, default=30.0)
    parser.add_argument("--only", choices=("understanding", "webhook", "sheets", "costs"))
    args = parser.parse_args()
    if args.only in (None, "understanding"):
        from bench.understanding import run

        run()
    if args.only in (None, "sheets"):
        _sheets(args)
    if args.only in (None, "costs"):
        from bench.firestore_costs import run as costs

        costs()
    if args.only in ("sheets", "understanding", "costs"):
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        create_sample_workbook(work / "seminar.xlsx")  # real credentials: no workbook is made
        ports = [procs.free_port() for _ in range(5)]
        started = [procs.simulator(ports[0], ports[1], SECRET, TOKEN, work / "sim.log")]
        firestore, missing = None, procs.firestore_missing()
        try:
            started.append(_serve("linebot_app:create_app()", ports[1], ports[0], work, "ours",
                                  args.workers))
            started.append(_serve("bench.echo_bot:create_app()", ports[2], ports[0], work, "echo",
                                  args.workers))
            echo = _measure(f"http://127.0.0.1:{ports[2]}/callback", args, 100, ports[0])
            ours = _measure(f"http://127.0.0.1:{ports[1]}/callback", args, 200, ports[0])
            if not missing:
                started.append(procs.firestore_emulator(ports[3], work / "firestore.log"))
                env = procs.firestore_env(f"127.0.0.1:{ports[3]}", "webhook")
                started.append(_serve("linebot_app:create_app()", ports[4], ports[0], work,
                                      "ours-firestore", args.workers, **env))
                firestore = _measure(f"http://127.0.0.1:{ports[4]}/callback", args, 300, ports[0])
        finally:
            for proc in reversed(started):
                procs.stop(proc)
    _report(args, ours, echo, firestore, missing)
    return 0


def _sheets(args: argparse.Namespace) -> None:
    from bench.sheets_burst import run

    burst = argparse.Namespace(count=args.sheets_count, seconds=args.sheets_seconds, limit=90.0)
    with tempfile.TemporaryDirectory(prefix="bench-sheets-") as tmp:
        run(burst, Path(tmp))


def _report(args: argparse.Namespace, ours: tuple[Result, Result],
            echo: tuple[Result, Result], firestore: tuple[Result, Result] | None,
            missing: str) -> None:
    print(f"\nfull speed: {args.requests} webhooks, {args.concurrency} senders; "
          f"fixed rate: {args.rate:.0f}/s for {args.seconds:.0f} s; gunicorn {args.workers} "
          "workers x 8 threads; LINE = the simulator's Messaging API\n")
    sent = int(args.rate * args.seconds) + args.requests
    print(f"| bot        | events/s | p50 ms  | p99 ms  | p50 ms @rate | p99 ms @rate | errors | replies (of {sent}) |")
    print("|------------|----------|---------|---------|--------------|--------------|--------|---------|")
    print(_row("ours", *ours))
    print(_row("echo (SDK)", *echo))
    if firestore:
        print(_row("ours, firestore", *firestore))
    else:
        print(f"\nours with STATE_BACKEND=firestore: not measured ({missing})")
    ratio = ours[1].rate / echo[1].rate if echo[1].rate else 0.0
    print(f"\nthroughput ratio ours/echo: {ratio:.2f} (target >= 0.70)")
    if firestore:
        print(f"ours, firestore = STATE_BACKEND=firestore on Google's emulator: throughput "
              f"{firestore[1].rate / ours[1].rate if ours[1].rate else 0:.2f}x the sqlite row, "
              f"p99 at {args.rate:.0f}/s {firestore[0].pct(99):.1f} ms")
    print(f"p99 at {args.rate:.0f} events/s: {ours[0].pct(99):.1f} ms (target <= 50 ms)")


if __name__ == "__main__":
    raise SystemExit(main())
