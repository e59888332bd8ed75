"""The soak: our bot on the embedded workbook under gunicorn, at 8 operations a second for 10
minutes, while the registrations sheet grows from empty to over 2,000 rows; beside the same
load with reads only (a sheet that does not grow). Each minute is sent by the load generators
of bench.load (separate processes, open loop) and gives a p99; the worker's RSS is read at the
start and after each minute.

python -m bench.soak [--minutes N] [--rate R]"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import requests

from bench import procs
from bench.load import Result, run_load, signed_bodies
from storage.local.state import SqliteState
from storage.sheets.sample import create_sample_workbook

SECRET = "soak-channel-secret"
TOKEN = "soak-access-token"
READS = ("イベント", "予定", "ごみの収集日はいつ?", "図書館の開館時間", "登録確認")
# What one operation is, by share: a new person registers, someone registered cancels or
# checks their registration, or anyone asks something.
WRITES = (("register", 0.45), ("cancel", 0.10), ("status", 0.15), ("read", 0.30))


@dataclass
class Minute:
    """One minute of the soak."""

    result: Result
    rows: int  # registrations in the workbook after it
    rss: float  # MB, the worker after it


def _user(n: int) -> str:
    return f"U{n + 1:032x}"


class Script:
    """The operations of a run, minute by minute: who does what, deterministic by seed."""

    def __init__(self, writes: bool, seed: int = 11) -> None:
        self.writes, self.rng = writes, random.Random(seed)
        self.registered: list[int] = []
        self.next_user = 0

    def text(self) -> tuple[str, str]:
        """(user, text) of the next operation."""
        kind = "read"
        if self.writes:
            kind = self.rng.choices([k for k, _ in WRITES], [w for _, w in WRITES])[0]
        if kind == "register" or (kind in ("cancel", "status") and not self.registered):
            self.next_user += 1
            self.registered.append(self.next_user)
            return _user(self.next_user), "参加登録 E2 参加 初心者"
        if kind == "cancel":
            who = self.registered.pop(self.rng.randrange(len(self.registered)))
            return _user(who), "キャンセル E2"
        if kind == "status":
            return _user(self.rng.choice(self.registered)), "登録確認"
        return _user(10_000 + self.rng.randrange(200)), self.rng.choice(READS)

    def bodies(self, count: int) -> list[tuple[bytes, str]]:
        """count signed webhook bodies, one event each."""
        said = [self.text() for _ in range(count)]
        return signed_bodies(SECRET, count, text_for=lambda n: said[n][1],
                             user_for=lambda n: said[n][0])


def _rows(book: Path) -> int:
    """Registrations in the workbook now (read from a copy: the bot may be saving it)."""
    for _ in range(5):
        try:
            wb = openpyxl.load_workbook(book, read_only=True)
            return sum(1 for row in wb["registrations"].iter_rows(min_row=2, values_only=True)
                       if any(row))
        except Exception:  # caught mid-save: read it again
            time.sleep(0.2)
    return -1


def run(writes: bool, minutes: int, rate: float, work: Path, seconds: float = 60.0
        ) -> list[Minute]:
    """One soak: a fresh sample workbook, consents for every person it will use, a standalone
    simulator, and the bot (1 worker × 8 threads); then `minutes` minutes at `rate` (a
    "minute" is `seconds` long: tests cut it short)."""
    name = "writes" if writes else "reads"
    book, data = work / f"{name}.xlsx", work / f"var-{name}"
    create_sample_workbook(book)
    state = SqliteState(data / "bot.sqlite3")
    for n in range(1, int(minutes * seconds * rate) + 2):
        state.give_consent(_user(n))
    port, sim_port = procs.free_port(), procs.free_port()
    sim = procs.simulator(sim_port, port, SECRET, TOKEN, work / f"sim-{name}.log")
    env = {"LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
           "LINE_API_BASE_URL": f"http://127.0.0.1:{sim_port}/simulator/line",
           "WORKBOOK_PATH": str(book), "DATA_DIR": str(data), "SCHEDULER": "off"}
    bot = procs.gunicorn("linebot_app:create_app()", port, env, work / f"bot-{name}.log",
                         workers=1, threads=8)
    script, out = Script(writes), []
    try:
        time.sleep(3)  # the worker reads the sheet on a thread of its own
        start_rss = procs.rss(bot)
        url = f"http://127.0.0.1:{port}/callback"
        warm = Script(False, seed=0).bodies(1)[0]  # one question first: the cold start (the
        requests.post(url, data=warm[0], timeout=120,  # tokenizer, the index) is not a minute
                      headers={"X-Line-Signature": warm[1], "Content-Type": "application/json"})
        for _ in range(minutes):
            result = run_load(url, script.bodies(int(seconds * rate)), rate=rate,
                              concurrency=16, max_seconds=seconds + 30)
            out.append(Minute(result, _rows(book), procs.rss(bot)))
    finally:
        procs.stop(bot)
        procs.stop(sim)
    out.insert(0, Minute(Result([], 0.0, 0), 0, start_rss))
    return out


def report(grow: list[Minute], flat: list[Minute]) -> None:
    """The table the performance doc quotes."""
    print("\nSoak: 8 operations a second on the workbook, one minute a line (p99 of that "
          "minute's webhooks, open loop; rows: registrations in the workbook after it; RSS: "
          "the worker after it)\n")
    print("| minute | writes: rows | writes: p99 ms | writes: errors | writes: RSS MB | "
          "reads only: p99 ms | reads only: errors | reads only: RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for n, (g, f) in enumerate(zip(grow[1:], flat[1:], strict=False), start=1):
        print(f"| {n} | {g.rows} | {g.result.pct(99):.1f} | {g.result.errors} | {g.rss:.1f} | "
              f"{f.result.pct(99):.1f} | {f.result.errors} | {f.rss:.1f} |")
    grown = grow[-1].rows - grow[1].rows
    per = (grow[-1].rss - grow[1].rss) * 2000 / grown if grown > 0 else 0.0
    print(f"\nWorker RSS before the first webhook: writes {grow[0].rss:.1f} MB, reads only "
          f"{flat[0].rss:.1f} MB. From the end of minute 1 (warm: the tokenizer, the FAQ index) "
          f"to the end: writes {grow[1].rss:.1f} -> {grow[-1].rss:.1f} MB ({per:+.1f} MB per "
          f"2,000 rows), reads only {flat[1].rss:.1f} -> {flat[-1].rss:.1f} MB")
    worst = max(g.result.pct(99) for g in grow[1:])
    print(f"targets: p99 <= 200 ms in every minute (worst {worst:.1f} ms); RSS growth <= 40 MB "
          "per 2,000 rows")


def measure(minutes: int = 10, rate: float = 8.0, seconds: float = 60.0
            ) -> tuple[list[Minute], list[Minute]]:
    """Both runs, one after the other, and the table."""
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        grow, flat = (run(w, minutes, rate, work, seconds) for w in (True, False))
        report(grow, flat)
        return grow, flat


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=8.0)
    parser.add_argument("--only", choices=("writes", "reads"), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        grow = run(True, args.minutes, args.rate, work) if args.only != "reads" else []
        flat = run(False, args.minutes, args.rate, work) if args.only != "writes" else []
        if grow and flat:
            report(grow, flat)
        for name, minutes in (("writes", grow), ("reads", flat)):
            if minutes and not (grow and flat):
                for n, m in enumerate(minutes[1:], start=1):
                    print(f"{name} minute {n}: rows {m.rows}, p99 {m.result.pct(99):.1f} ms, "
                          f"errors {m.result.errors}, rss {m.rss:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
