"""Start servers as child processes on loopback and wait until they answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, seconds: float = 30) -> None:
    """Poll url until it answers, or fail with the process's output."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not answer in {seconds}s")


def start(args: list[str], env: dict[str, str], ready_url: str, log: Path) -> subprocess.Popen:
    """Start a server process (its output goes to log) and wait until it answers."""
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    wait_ready(ready_url, proc)
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, seconds: float = 20) -> int:
    """Signal the process group and wait for it to end."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=5)


def simulator(port: int, bot_port: int, secret: str, token: str, log: Path,
              validate: bool = False, send_delay_ms: float = 0.0) -> subprocess.Popen:
    """The standalone simulator, taking any reply token (webhooks come from a load tool)."""
    args = [sys.executable, "-m", "linebot_app.simulator", "--port", str(port),
            "--webhook", f"http://127.0.0.1:{bot_port}/callback", "--secret", secret,
            "--token", token, "--any-reply-token", "--send-delay-ms", str(send_delay_ms)
            ] + ([] if validate else ["--no-validation"])
    return start(args, {}, f"http://127.0.0.1:{port}/simulator/api/users", log)


def gunicorn(app: str, port: int, env: dict[str, str], log: Path, workers: int = 2,
             threads: int = 8) -> subprocess.Popen:
    """An app under gunicorn with our config file (flusher hooks), on loopback."""
    args = [str(BIN / "gunicorn"), "-c", str(ROOT / "linebot_app" / "gunicorn_conf.py"),
            "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}",
            app]
    return start(args, env, f"http://127.0.0.1:{port}/healthz", log)
