"""Start servers as child processes on loopback and wait until they answer."""

from __future__ import annotations

import os
import shutil
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


def wait_ready(url: str, proc: subprocess.Popen | None, seconds: float = 30) -> None:
    """Poll url until it answers, or fail with the process's output (proc None: a server
    started elsewhere)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not answer in {seconds}s")


def launch(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a server process in a process group of its own (its output goes to log)."""
    with log.open("w") as out:
        return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def start(args: list[str], env: dict[str, str], ready_url: str, log: Path,
          seconds: float = 30) -> subprocess.Popen:
    """Start a server process (its output goes to log) and wait until it answers."""
    proc = launch(args, env, log)
    try:
        wait_ready(ready_url, proc, seconds)
    except RuntimeError:
        stop(proc)
        raise
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


def children(pid: int) -> list[int]:
    """The process ids whose parent is pid (gunicorn's workers)."""
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in found.read_text().split()] if found.exists() else []


def rss(master: subprocess.Popen) -> float:
    """Resident memory (MB) of the gunicorn workers of this master, summed."""
    total = 0
    for pid in children(master.pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def simulator(port: int, bot_port: int, secret: str, token: str, log: Path,
              validate: bool = False, send_delay_ms: float = 0.0,
              profile_delay_ms: float = 0.0) -> subprocess.Popen:
    """The standalone simulator, taking any reply token (webhooks come from a load tool)."""
    args = [sys.executable, "-m", "linebot_app.simulator", "--port", str(port),
            "--webhook", f"http://127.0.0.1:{bot_port}/callback", "--secret", secret,
            "--token", token, "--any-reply-token", "--send-delay-ms", str(send_delay_ms),
            "--profile-delay-ms", str(profile_delay_ms)
            ] + ([] if validate else ["--no-validation"])
    return start(args, {}, f"http://127.0.0.1:{port}/simulator/api/users", log)


def gunicorn(app: str, port: int, env: dict[str, str], log: Path, workers: int = 2,
             threads: int = 8) -> subprocess.Popen:
    """An app under gunicorn with our config file (flusher hooks), on loopback."""
    args = [str(BIN / "gunicorn"), "-c", str(ROOT / "linebot_app" / "ops" / "gunicorn_conf.py"),
            "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}",
            app]
    return start(args, env, f"http://127.0.0.1:{port}/healthz", log)


def firestore_missing() -> str:
    """Why Google's Firestore emulator cannot run here, or '' when it can."""
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        return "the Firestore emulator needs gcloud and Java (google-cloud-cli-firestore-emulator)"
    sdk = Path(os.path.realpath(gcloud)).parent.parent
    if not (sdk / "platform" / "cloud-firestore-emulator").is_dir():
        return f"gcloud at {gcloud} has no Firestore emulator (google-cloud-cli-firestore-emulator)"
    return ""


def firestore_emulator(port: int, log: Path, seconds: float = 90, *,
                       wait: bool = True) -> subprocess.Popen:
    """Google's Firestore emulator on loopback. It runs in a process group of its own, since
    gcloud starts Java: procs.stop ends both. wait=False: return at once (wait_ready later)."""
    args = [str(shutil.which("gcloud")), "emulators", "firestore", "start",
            f"--host-port=127.0.0.1:{port}"]
    env = {"CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "JAVA_TOOL_OPTIONS": "-Xmx1g"}
    if not wait:
        return launch(args, env, log)
    return start(args, env, f"http://127.0.0.1:{port}/", log, seconds)


def firestore_env(host: str, namespace: str) -> dict[str, str]:
    """What a bot needs to keep its state in the emulator's namespace."""
    return {"STATE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "demo-bench",
            "FIRESTORE_EMULATOR_HOST": host, "FIRESTORE_NAMESPACE": namespace}
