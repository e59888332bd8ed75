"""make bench: understanding on the labelled queries beside a keyword matcher; a burst of
registrations on Google Sheets (one instance, then three on Firestore); what Firestore costs per
message and registration; then our bot and the smallest SDK echo bot, measured in alternating
rounds by load generators in separate processes (and our bot once more on Firestore); and a
10-minute soak on a growing workbook beside the same load with reads only (bench.soak)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import procs
from bench.load import Result, run_load, signed_bodies
from storage.sheets.sample import create_sample_workbook

IDLE_AFTER_SECONDS = 3.0
SECRET = "bench-channel-secret"
TOKEN = "bench-access-token"


def _serve(app: str, port: int, sim_port: int, work: Path, name: str, workers: int,
           **extra: str) -> subprocess.Popen:
    env = {"LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
           "LINE_API_BASE_URL": f"http://127.0.0.1:{sim_port}/simulator/line",
           "WORKBOOK_PATH": str(work / "seminar.xlsx"), "DATA_DIR": str(work / f"var-{name}"),
           "SCHEDULER": "off", **extra}  # as deployed (cron runs rounds): only webhooks are timed
    return procs.gunicorn(app, port, env, work / f"{name}.log", workers=workers)


def _replies(sim_port: int) -> int:
    counts = requests.get(f"http://127.0.0.1:{sim_port}/simulator/api/calls", timeout=10).json()
    return int(counts.get("reply", 0))


@dataclass
class Round:
    """One bot's figures in one round."""

    rated: Result  # the mixed texts at a fixed rate
    fast: Result  # ヘルプ at full speed (the independent measurement's load)
    mixed: Result  # the mixed texts at full speed
    rss_idle: float  # MB, the worker once started and ready, before its first webhook
    rss_loaded: float  # MB, the worker after this round


def _idle_rss(bot: subprocess.Popen) -> float:
    """The worker's RSS once it has started and read the sheet (post_worker_init reads it on a
    thread of its own), before any webhook."""
    time.sleep(IDLE_AFTER_SECONDS)
    return procs.rss(bot)


def _round(url: str, bot: subprocess.Popen, idle: float, args: argparse.Namespace, seed: int,
           sim_port: int) -> Round:
    run_load(url, signed_bodies(SECRET, 100, seed), concurrency=8)  # warm up
    before = _replies(sim_port)
    rated = run_load(url, signed_bodies(SECRET, int(args.rate * args.seconds), seed + 1),
                     rate=args.rate)
    fast = run_load(url, signed_bodies(SECRET, args.requests, seed + 2, lambda n: "ヘルプ"),
                    concurrency=args.concurrency)
    mixed = run_load(url, signed_bodies(SECRET, args.requests, seed + 3),
                     concurrency=args.concurrency)
    rated.replies = _replies(sim_port) - before  # every phase's replies, as LINE received them
    return Round(rated, fast, mixed, idle, procs.rss(bot))


def _row(name: str, r: Round) -> str:
    errors = r.rated.errors + r.fast.errors + r.mixed.errors
    return (f"| {name:<15} | {r.fast.rate:8.1f} | {r.fast.pct(50):7.1f} | {r.fast.pct(99):7.1f} | "
            f"{r.mixed.rate:8.1f} | {r.mixed.pct(99):7.1f} | "
            f"{r.rated.pct(50):12.1f} | {r.rated.pct(99):12.1f} | {errors:6d} | "
            f"{r.rated.replies:7d} | {r.rss_idle:6.1f} | {r.rss_loaded:6.1f} |")


def _median_round(rounds: list[Round]) -> dict[str, float]:
    med = statistics.median
    return {"rate": med(r.fast.rate for r in rounds), "p50": med(r.fast.pct(50) for r in rounds),
            "p99": med(r.fast.pct(99) for r in rounds),
            "mixed": med(r.mixed.rate for r in rounds),
            "p99_rated": med(r.rated.pct(99) for r in rounds),
            "rss_idle": med(r.rss_idle for r in rounds),
            "rss_loaded": med(r.rss_loaded for r in rounds)}


def main() -> int:
    """Start the simulator and the bots under gunicorn, measure in alternating rounds, print,
    stop."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sheets-count", type=int, default=3000)
    parser.add_argument("--sheets-seconds", type=float, default=30.0)
    parser.add_argument("--only", choices=("understanding", "webhook", "sheets", "costs", "soak"))
    parser.add_argument("--soak-minutes", type=int, default=10)
    parser.add_argument("--firestore-host", default="",
                        help="a Firestore emulator already running (HOST:PORT) instead of one "
                             "started for the webhook part")
    args = parser.parse_args()
    if args.only in (None, "understanding"):
        from bench.understanding import run

        run()
    if args.only in (None, "sheets"):
        _sheets(args)
    if args.only in (None, "costs"):
        from bench.firestore_costs import run as costs

        costs()
    if args.only in (None, "soak"):
        from bench import soak

        soak.measure(args.soak_minutes)
    if args.only in ("sheets", "understanding", "costs", "soak"):
        return 0
    _webhook(args)
    return 0


def _webhook(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        create_sample_workbook(work / "seminar.xlsx")  # real credentials: no workbook is made
        ports = [procs.free_port() for _ in range(5)]
        started = [procs.simulator(ports[0], ports[1], SECRET, TOKEN, work / "sim.log")]
        bots: dict[str, tuple[str, subprocess.Popen, float]] = {}
        rounds: dict[str, list[Round]] = {"ours": [], "echo (SDK)": [], "ours, firestore": []}
        missing = "" if args.firestore_host else procs.firestore_missing()
        try:
            for name, app, port in (("ours", "linebot_app:create_app()", ports[1]),
                                    ("echo (SDK)", "bench.echo_bot:create_app()", ports[2])):
                bot = _serve(app, port, ports[0], work, name.split()[0], args.workers)
                started.append(bot)
                bots[name] = (f"http://127.0.0.1:{port}/callback", bot, _idle_rss(bot))
            for n in range(args.rounds):  # ours, echo, ours, echo, ...
                for name in ("ours", "echo (SDK)"):
                    url, bot, idle = bots[name]
                    rounds[name].append(_round(url, bot, idle, args,
                                               100 * n + len(rounds[name]), ports[0]))
            if args.firestore_host or not missing:
                host = args.firestore_host or f"127.0.0.1:{ports[3]}"
                if not args.firestore_host:
                    started.append(procs.firestore_emulator(ports[3], work / "firestore.log"))
                env = procs.firestore_env(host, f"webhook{os.getpid()}")
                bot = _serve("linebot_app:create_app()", ports[4], ports[0], work,
                             "ours-firestore", args.workers, **env)
                started.append(bot)
                rounds["ours, firestore"].append(_round(
                    f"http://127.0.0.1:{ports[4]}/callback", bot, _idle_rss(bot), args, 900,
                    ports[0]))
        finally:
            for proc in reversed(started):
                procs.stop(proc)
    _report(args, rounds, missing)


def _sheets(args: argparse.Namespace) -> None:
    from bench.sheets_burst import run

    burst = argparse.Namespace(count=args.sheets_count, seconds=args.sheets_seconds, limit=90.0)
    with tempfile.TemporaryDirectory(prefix="bench-sheets-") as tmp:
        run(burst, Path(tmp))


def _report(args: argparse.Namespace, rounds: dict[str, list[Round]], missing: str) -> None:
    print(f"\nwebhook: {args.rounds} alternating rounds (ours, echo, ours, echo, ...); each round: "
          f"the mixed texts at {args.rate:.0f}/s for {args.seconds:.0f} s (open loop), then "
          f"{args.requests} ヘルプ webhooks and {args.requests} of the mixed texts, each from "
          f"{args.concurrency} keep-alive senders (closed loop); 2 load-generator processes; "
          f"gunicorn {args.workers} worker x 8 threads; LINE = the simulator's Messaging API\n")
    sent = int(args.rate * args.seconds) + 2 * args.requests
    print(f"| bot, round      | events/s | p50 ms  | p99 ms  | mixed events/s | mixed p99 ms "
          f"| p50 ms @rate | p99 ms @rate | errors | replies (of {sent}) | RSS idle MB "
          f"| RSS loaded MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, found in rounds.items():
        for n, r in enumerate(found, start=1):
            print(_row(f"{name} {n}", r))
    if missing:
        print(f"\nours with STATE_BACKEND=firestore: not measured ({missing})")
    ours, echo = _median_round(rounds["ours"]), _median_round(rounds["echo (SDK)"])
    print("\n| median of the rounds | events/s | p50 ms | p99 ms | mixed events/s | p99 ms @rate "
          "| RSS idle MB | RSS loaded MB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, med in (("ours", ours), ("echo (SDK)", echo)):
        print(f"| {name} | {med['rate']:.1f} | {med['p50']:.1f} | {med['p99']:.1f} | "
              f"{med['mixed']:.1f} | {med['p99_rated']:.1f} | {med['rss_idle']:.1f} | "
              f"{med['rss_loaded']:.1f} |")
    ratio = ours["rate"] / echo["rate"] if echo["rate"] else 0.0
    p99 = ours["p99"] / echo["p99"] if echo["p99"] else 0.0
    print(f"\nthroughput ratio ours/echo (medians): {ratio:.2f} (target >= 0.90); per round: "
          + ", ".join(f"{o.fast.rate / e.fast.rate:.2f}" for o, e in zip(
              rounds["ours"], rounds["echo (SDK)"], strict=False) if e.fast.rate))
    print(f"full-speed p99 ours/echo (medians): {p99:.2f} (target <= 1.5)")
    mixed = ours["mixed"] / echo["mixed"] if echo["mixed"] else 0.0
    print(f"on the mixed texts (ours answers FAQ questions, event lists; echo echoes): "
          f"throughput ratio {mixed:.2f}")
    print(f"p99 at {args.rate:.0f} events/s: {ours['p99_rated']:.1f} ms (target <= 20 ms)")
    print(f"idle RSS: {ours['rss_idle']:.1f} MB (target <= 80 MB)")
    if rounds["ours, firestore"]:
        fs = rounds["ours, firestore"][0]
        print(f"ours, firestore = STATE_BACKEND=firestore on Google's emulator: throughput "
              f"{fs.fast.rate / ours['rate'] if ours['rate'] else 0:.2f}x the sqlite median, "
              f"p99 at {args.rate:.0f}/s {fs.rated.pct(99):.1f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
