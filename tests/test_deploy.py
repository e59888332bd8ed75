"""Production: app.yaml and cron.yaml, the Dockerfile, no secrets in git, check --online,
set-webhook, readiness, structured logs, and the app.yaml entrypoint under gunicorn."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from bench import procs
from linebot_app import create_app
from linebot_app.config import SIMULATOR_SECRET, Settings, cloud_project
from linebot_app.logs import TRACE, CloudFormatter, TraceFilter, formatter
from linebot_app.simulator.platform import sign
from linebot_app.wiring import build_state
from tests.conftest import (
    ROOT,
    SECRET,
    TOKEN,
    Emu,
    LiveServer,
    free_port,
    google_env,
    make_settings,
    make_store,
    openapi_env,
    text_event,
)

APP_YAML = yaml.safe_load((ROOT / "app.yaml").read_text(encoding="utf-8"))


def test_app_yaml_parses_and_runs_several_instances_only_on_firestore() -> None:
    assert APP_YAML["runtime"] == f"python3{sys.version_info.minor}"  # what CI tests
    assert APP_YAML["env_variables"]["SCHEDULER"] == "off"  # cron runs the rounds there
    assert "linebot_app:create_app()" in APP_YAML["entrypoint"]
    assert "$PORT" in APP_YAML["entrypoint"] and "gunicorn" in APP_YAML["entrypoint"]
    state = APP_YAML["env_variables"].get("STATE_BACKEND", "sqlite")
    instances = APP_YAML["automatic_scaling"]["max_instances"]
    assert (state, instances) == ("firestore", 3)  # sqlite would have to stay at one instance
    assert "warmup" in APP_YAML["inbound_services"]
    assert "secrets.yaml" in APP_YAML["includes"]
    assert not {"LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"} & set(APP_YAML["env_variables"])


def test_cron_yaml_runs_flush_and_remind_every_minute() -> None:
    jobs = {j["url"]: j["schedule"] for j in
            yaml.safe_load((ROOT / "deploy/cron.yaml").read_text(encoding="utf-8"))["cron"]}
    assert jobs == {"/tasks/flush": "every 1 minutes", "/tasks/remind": "every 1 minutes"}


def test_dockerfile_runs_gunicorn_on_port_as_a_non_root_user() -> None:
    lines = [ln.strip() for ln in (ROOT / "deploy/Dockerfile").read_text().splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("#")]
    assert code[0] == f"FROM python:3.{sys.version_info.minor}-slim"  # the version CI tests
    assert "SCHEDULER=off" in " ".join(code)  # Cloud Scheduler calls /tasks/remind
    instruction = re.search(r"\bENV (.*?) (?:WORKDIR|COPY|RUN|USER|CMD) ",
                            " ".join(code).replace("\\", " "))
    env = dict(pair.split("=", 1) for pair in instruction.group(1).split())
    assert env["STATE_BACKEND"] == "firestore"  # several instances share their state
    users = [ln.split()[1] for ln in code if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    cmd = " ".join(code[code.index(next(ln for ln in code if ln.startswith("CMD"))):])
    assert "gunicorn" in cmd and "${PORT}" in cmd and "linebot_app:create_app()" in cmd


SECRET_PATTERNS = {
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a service-account key": re.compile(r'"private_key"\s*:'),
    "a long token": re.compile(r"(?i)(secret|token|key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9+/=_\-]{40,}"),
    "a Google API key": re.compile(r"AIza[0-9A-Za-z\-_]{35}"),
}
SECRET_FILES = re.compile(r"(^|/)(\.env|secrets\.yaml|.*\.pem|.*\.p12|.*-key\.json)$")


def test_no_secrets_or_key_files_are_in_git() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    found = [f"{name}: a key file" for name in files if SECRET_FILES.search(name)]
    for name in files:
        path = ROOT / name
        if path.suffix in (".png", ".xlsx") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name}: {what}" for what, rx in SECRET_PATTERNS.items() if rx.search(text)]
    assert found == []


def test_the_secret_scan_would_catch_a_key() -> None:
    begin = "-----BEGIN " + "PRIVATE KEY-----"  # split so this file does not trip the scan
    fake = '{"type": "service_account", "private' + f'_key": "{begin}"}}'
    assert SECRET_PATTERNS["a service-account key"].search(fake)
    assert SECRET_PATTERNS["a private key"].search(fake)
    assert SECRET_PATTERNS["a long token"].search("LINE_CHANNEL_ACCESS_TOKEN=" + "Ab3" * 20)
    assert SECRET_FILES.search("deploy/my-key.json")


# ---- check --online and set-webhook, against the simulator and the emulator ---------------------
@pytest.fixture
def live_bot(tmp_path, emu: Emu) -> Iterator[dict[str, str]]:
    """The bot in simulator mode (no LINE credentials: the simulator's own) on a loopback port,
    on the emulated Google sheet."""
    port = free_port()
    env = {**google_env(emu), "PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}",
           "DATA_DIR": str(tmp_path / "var"), "WORKBOOK_PATH": str(tmp_path / "seminar.xlsx")}
    env.update(openapi_env())
    make_store(make_settings(tmp_path, **google_env(emu)))  # init-sheet on the emulator
    app = create_app(Settings.from_env(env))
    with LiveServer(app, port):
        yield env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "linebot_app", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_set_webhook_then_check_online_passes(live_bot: dict[str, str]) -> None:
    result = _cli(live_bot, "set-webhook", live_bot["PUBLIC_URL"] + "/callback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ Webhook のテスト / test: 200 OK" in result.stdout
    online = _cli(live_bot, "check", "--online")
    assert online.returncode == 0, online.stdout
    assert online.stdout.count("✓") >= 5 and "✗" not in online.stdout


def test_check_online_reports_a_bad_token(live_bot: dict[str, str]) -> None:
    wrong = {"LINE_CHANNEL_SECRET": SIMULATOR_SECRET, "LINE_CHANNEL_ACCESS_TOKEN": "wrong",
             "LINE_API_BASE_URL": live_bot["PUBLIC_URL"] + "/simulator/line"}
    result = _cli({**live_bot, **wrong}, "check", "--online")
    assert result.returncode == 1 and "✗ アクセストークンが使えません" in result.stdout
    assert "→ LINE Developers" in result.stdout


def test_check_online_reports_a_webhook_url_mismatch(live_bot: dict[str, str]) -> None:
    _cli(live_bot, "set-webhook", "http://127.0.0.1:9/elsewhere")
    result = _cli(live_bot, "check", "--online")
    assert result.returncode == 1 and "Webhook URL が違います" in result.stdout
    assert f"set-webhook {live_bot['PUBLIC_URL']}/callback" in result.stdout


def test_check_online_reports_a_sheet_that_is_not_shared(live_bot: dict[str, str], emu: Emu,
                                                         tmp_path: Path) -> None:
    emu.create("PRIVATE", shared_with=["owner@example.org"])
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"client_email": "bot@proj.example"}))
    env = {**live_bot, "GOOGLE_SPREADSHEET_ID": "PRIVATE", "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    _cli(env, "set-webhook", live_bot["PUBLIC_URL"] + "/callback")
    result = _cli(env, "check", "--online")
    assert result.returncode == 1 and "bot@proj.example" in result.stdout
    assert "共有" in result.stdout


def test_check_online_reports_a_missing_worksheet(live_bot: dict[str, str], emu: Emu) -> None:
    emu.create("PARTIAL", sheets={"events": [["id", "title", "date"]]})
    env = {**live_bot, "GOOGLE_SPREADSHEET_ID": "PARTIAL"}
    _cli(env, "set-webhook", live_bot["PUBLIC_URL"] + "/callback")
    result = _cli(env, "check", "--online")
    assert result.returncode == 1 and "faq" in result.stdout and "シートがありません" in result.stdout
    assert "init-sheet" in result.stdout


@pytest.mark.slow
def test_check_online_writes_to_firestore_and_says_so(live_bot: dict[str, str],
                                                      firestore_env: dict[str, str]) -> None:
    _cli(live_bot, "set-webhook", live_bot["PUBLIC_URL"] + "/callback")
    result = _cli({**live_bot, **firestore_env}, "check", "--online")
    assert result.returncode == 0, result.stdout
    assert "✓ 状態 / state: Firestore demo-seminar/(default) bots/" in result.stdout
    assert "✓ 状態 / state: Firestore" in _cli({**live_bot, **firestore_env}, "check").stdout
    down = {**firestore_env, "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
            "FIRESTORE_TIMEOUT_SECONDS": "1"}
    for args in (("check", "--online"), ("check",)):
        result = _cli({**live_bot, **down}, *args)
        assert result.returncode == 1 and "✗ Firestore に書き込めません" in result.stdout
        assert f"{down['FIRESTORE_EMULATOR_HOST']} で動いているか" in result.stdout
        assert "共有" not in result.stdout  # the sheet is not blamed for it


# ---- health, readiness, logs ----------------------------------------------------------------------
def test_readyz_reports_the_sheet_and_the_outbox_without_personal_data(bot) -> None:
    bot.consent("U" + "4" * 32)
    bot.say("参加登録 E2 参加 初心者", user="U" + "4" * 32)
    res = bot.client.get("/readyz")
    assert res.status_code == 200 and res.json["ready"] and res.json["sheet_loaded"]
    assert set(res.json) == {"ready", "sheet_loaded", "sheet_from_snapshot", "sheet_problems",
                             "outbox_depth", "outbox_oldest_seconds"}
    assert res.json["sheet_from_snapshot"] is False
    assert "U444" not in res.get_data(as_text=True)
    assert bot.client.get("/_ah/warmup").status_code == 200


def test_logs_are_json_with_severity_and_trace_on_google_cloud() -> None:
    fmt = formatter(cloud_project({"K_SERVICE": "bot", "GOOGLE_CLOUD_PROJECT": "proj"}))
    assert isinstance(fmt, CloudFormatter)
    record = logging.LogRecord("x", logging.WARNING, "f", 1, "registration %s", ("U12…def",), None)
    TRACE.set("abc123")
    TraceFilter().filter(record)
    entry = json.loads(fmt.format(record))
    assert entry["severity"] == "WARNING" and entry["message"] == "registration U12…def"
    assert entry["logging.googleapis.com/trace"] == "projects/proj/traces/abc123"
    assert not isinstance(formatter(cloud_project({"GOOGLE_CLOUD_PROJECT": "proj"})), CloudFormatter)


def test_each_request_takes_the_cloud_trace_id(bot, caplog) -> None:
    seen = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(TRACE.get())

    handler = Grab(level=logging.DEBUG)  # "text from ..." is logged at debug level
    logger = logging.getLogger("linebot_app")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        body = json.dumps({"destination": "U0", "events": [text_event("ヘルプ")]}).encode()
        bot.client.post("/callback", data=body, headers={
            "X-Line-Signature": sign(SECRET, body), "X-Cloud-Trace-Context": "feedbeef/1;o=1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert seen and set(seen) == {"feedbeef"}


@pytest.mark.slow
# ---- the app.yaml entrypoint, under gunicorn, production style ---------------------------------
def test_app_yaml_entrypoint_boots_and_takes_a_registration(tmp_path, emu: Emu,
                                                            firestore_env: dict[str, str]) -> None:
    settings = make_settings(tmp_path, **google_env(emu))
    make_store(settings)
    state = build_state(make_settings(tmp_path, **firestore_env))  # app.yaml keeps it there
    state.give_consent("U" + "8" * 32)
    port, sim_port = free_port(), free_port()
    sim = procs.simulator(sim_port, port, SECRET, TOKEN, tmp_path / "sim.log")
    env = {**os.environ, **{k: str(v) for k, v in APP_YAML["env_variables"].items()},
           **google_env(emu), **firestore_env, "PORT": str(port), "HOST": "127.0.0.1",
           "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
           "LINE_API_BASE_URL": f"http://127.0.0.1:{sim_port}/simulator/line",
           "DATA_DIR": str(settings.data_dir), "GAE_ENV": "standard"}
    args = shlex.split(APP_YAML["entrypoint"].replace(":$PORT", f"127.0.0.1:{port}"))
    args[0] = str(Path(sys.executable).parent / args[0])
    with (tmp_path / "gunicorn.log").open("w") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        procs.wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
        assert requests.get(f"http://127.0.0.1:{port}/simulator", timeout=5).status_code == 404
        body = json.dumps({"destination": "U0", "events": [
            text_event("参加登録 E2 参加 初心者", user="U" + "8" * 32)]}).encode()
        res = requests.post(f"http://127.0.0.1:{port}/callback", data=body, timeout=10,
                            headers={"X-Line-Signature": sign(SECRET, body)})
        assert res.status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        procs.stop(sim)
    assert [r["user_id"] for r in emu.rows("registrations")] == ["U" + "8" * 32]
    lines = (tmp_path / "gunicorn.log").read_text().splitlines()
    structured = [json.loads(ln) for ln in lines if ln.startswith("{")]
    assert structured and all("severity" in e for e in structured)
    assert not any("参加登録" in ln for ln in lines)  # message text never logged



def _entrypoint(port: int) -> list[str]:
    args = shlex.split(APP_YAML["entrypoint"].replace(":$PORT", f"127.0.0.1:{port}"))
    args[0] = str(Path(sys.executable).parent / args[0])
    return args


@pytest.mark.parametrize("where", [{"K_SERVICE": "seminar-bot"}, {"GAE_ENV": "standard"}])
def test_the_entrypoint_refuses_to_start_in_production_without_configuration(
        tmp_path, where: dict[str, str]) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "SIMULATOR"))}
    env.update(where, PORT=str(port), DATA_DIR=str(tmp_path / "var"),
               WORKBOOK_PATH=str(tmp_path / "seminar.xlsx"))
    proc = subprocess.Popen(_entrypoint(port), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode != 0 and "AttributeError" not in out, out
    problems = out[out.index("ConfigError"):]
    for name in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "WORKBOOK_PATH",
                 str(tmp_path / "seminar.xlsx"), next(iter(where))):
        assert name in problems, out
    assert not (tmp_path / "seminar.xlsx").exists()  # no demo data in production
