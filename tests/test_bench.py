"""`make bench` keeps working: its webhook part, cut short, starts both bots and both answer."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def firestore(request: pytest.FixtureRequest) -> str:
    """The tests' Firestore emulator when it can run here ('' where it cannot: the bench then
    measures the SQLite bot alone, as `make bench` does)."""
    from bench import procs

    if procs.firestore_missing() and os.environ.get("REQUIRE_FIRESTORE") != "1":
        return ""
    return request.getfixturevalue("firestore_host")


def test_the_webhook_benchmark_runs_both_bots_and_every_event_is_answered(firestore: str
                                                                          ) -> None:
    reuse = ["--firestore-host", firestore] if firestore else []
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "webhook", "--rate", "20", "--seconds", "1",
         "--requests", "40", "--concurrency", "4", "--rounds", "2", *reuse],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {m[1]: (m[2], m[3], float(m[4])) for m in re.finditer(
        r"^\| (ours \d|echo \(SDK\) \d|ours, firestore \d) +\|.*\| +(\d+) \| +(\d+) \| +([\d.]+) \| +[\d.]+ \|$",
        result.stdout, re.M)}
    assert {k: v[:2] for k, v in rows.items()} == {  # alternating rounds, every event answered
        "ours 1": ("0", "100"), "ours 2": ("0", "100"),
        "echo (SDK) 1": ("0", "100"), "echo (SDK) 2": ("0", "100"),
        **({"ours, firestore 1": ("0", "100")} if firestore else {})}, result.stdout
    assert all(20 < rss < 500 for _, _, rss in rows.values()), rows  # a worker's RSS was read
    assert "throughput ratio ours/echo (medians)" in result.stdout
    assert re.search(r"on the mixed texts .*: throughput ratio \d+\.\d\d$", result.stdout, re.M)


def test_the_soak_runs_both_loads_and_every_operation_is_answered(capsys) -> None:
    """`make bench`'s soak, cut to two 5-second "minutes": the sheet grows under the writes,
    not under the reads, and no webhook goes unanswered."""
    from bench import soak

    grow, flat = soak.measure(minutes=2, rate=8.0, seconds=5.0)
    assert [len(m.result.latencies) for m in grow[1:]] == [40, 40]
    assert all(m.result.errors == 0 for m in grow[1:] + flat[1:])
    assert 0 < grow[1].rows < grow[2].rows and flat[-1].rows == 0
    printed = capsys.readouterr().out
    assert "| minute | writes: rows |" in printed and "per 2,000 rows" in printed
