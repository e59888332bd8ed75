"""/tasks/*: App Engine's cron header counts only on App Engine; elsewhere the TASKS_TOKEN bearer,
and on Cloud Run Cloud Scheduler's Google-signed OIDC token; with none, everything is refused and
check says why."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import ROOT, BotHarness, build_harness

SQLITE_ON_CLOUD = {"STATE_BACKEND": "sqlite", "ALLOW_EPHEMERAL_STATE": "on"}  # state on the instance's disk
CRON = {"X-Appengine-Cron": "true"}


@pytest.mark.parametrize("path", ["/tasks/remind", "/tasks/flush"])
def test_the_app_engine_header_is_refused_off_app_engine(tmp_path: Path, path: str) -> None:
    bot = build_harness(tmp_path, TASKS_TOKEN="a-task-token")
    assert bot.client.post(path, headers=CRON).status_code == 403
    assert bot.client.post(path, headers={"Authorization": "Bearer a-task-token"}).status_code \
        == 200


def test_on_app_engine_its_cron_header_gets_in(tmp_path: Path) -> None:
    bot = build_harness(tmp_path, GAE_ENV="standard", **SQLITE_ON_CLOUD)
    res = bot.client.post("/tasks/remind", headers=CRON)
    assert res.status_code == 200 and res.json["changes"] == 0
    assert bot.client.post("/tasks/remind").status_code == 403


@pytest.mark.parametrize("given", ["", "Bearer ", "Bearer none", "bearer a-task-token"])
def test_with_no_token_set_nothing_gets_in(tmp_path: Path, given: str) -> None:
    bot = build_harness(tmp_path)
    headers = {"Authorization": given, **CRON} if given else CRON
    assert bot.client.post("/tasks/remind", headers=headers).status_code == 403


def test_check_says_why_the_tasks_are_closed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TASKS_TOKEN", "GAE_ENV")}
    env.update(WORKBOOK_PATH=str(tmp_path / "seminar.xlsx"), DATA_DIR=str(tmp_path / "var"))
    run = [sys.executable, "-m", "linebot_app", "check"]
    closed = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    closed_line = "! /tasks/flush と /tasks/remind はすべて 403 を返します"
    assert closed_line in closed.stdout
    env["TASKS_TOKEN"] = "a-task-token"
    opened = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "/tasks/flush" not in opened.stdout  # (the tmp path may itself contain "403")


# ---- Cloud Run: Cloud Scheduler's Google-signed OIDC token -----------------------------------
SERVICE_URL = "https://seminar-bot.example.run.app"
INVOKER = "scheduler@project.iam.gserviceaccount.com"
GOOGLE_CERTS = "https://www.googleapis.com/oauth2/v1/certs"


def _key() -> tuple[str, str]:
    """A fresh RSA key pair as (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


GOOGLE_KEY, GOOGLE_PUBLIC = _key()
OTHER_KEY, _ = _key()


@dataclass
class CertsServer:
    """Plays Google's certificate endpoint for google-auth's transport; records each URL asked.
    It answers with `status`, after `delay` seconds, telling how long the answer may be kept."""

    urls: list[str] = field(default_factory=list)
    max_age: int = 3600
    status: int = 200
    delay: float = 0.0

    def __call__(self, url: str, method: str = "GET", **kwargs: object) -> SimpleNamespace:
        self.urls.append(url)
        time.sleep(self.delay)
        body = json.dumps({"google-key-1": GOOGLE_PUBLIC}).encode()
        return SimpleNamespace(status=self.status, data=body, headers={
            "content-type": "application/json",
            "Cache-Control": f"public, max-age={self.max_age}, must-revalidate, no-transform"})


def _token(key: str = GOOGLE_KEY, **claims: object) -> str:
    from google.auth import crypt, jwt

    now = int(time.time())
    payload = {"iss": "https://accounts.google.com", "aud": SERVICE_URL, "sub": "1234567890",
               "email": INVOKER, "email_verified": True, "iat": now, "exp": now + 600, **claims}
    signer = crypt.RSASigner.from_string(key, key_id="google-key-1")
    return jwt.encode(signer, payload).decode()


@pytest.fixture
def cloud_run(tmp_path: Path) -> tuple[BotHarness, CertsServer]:
    bot = build_harness(tmp_path, K_SERVICE="seminar-bot", **SQLITE_ON_CLOUD, PUBLIC_URL=SERVICE_URL,
                        TASKS_INVOKER=INVOKER)
    certs = CertsServer()
    bot.app.extensions["seminar_google_request"] = certs
    return bot, certs


def test_cloud_schedulers_oidc_token_gets_in(cloud_run) -> None:
    bot, certs = cloud_run
    res = bot.client.post("/tasks/remind", headers={"Authorization": f"Bearer {_token()}"})
    assert res.status_code == 200 and res.json["changes"] == 0
    assert certs.urls == [GOOGLE_CERTS]  # checked against Google's own certificates
    flushed = bot.client.post("/tasks/flush", headers={"Authorization": f"Bearer {_token()}"})
    assert flushed.status_code == 200 and flushed.json["pending"] == 0


@pytest.mark.parametrize("claims,key", [
    ({"aud": SERVICE_URL + "/tasks/remind"}, GOOGLE_KEY),  # another audience
    ({"aud": "https://evil.example"}, GOOGLE_KEY),
    ({"email": "someone@project.iam.gserviceaccount.com"}, GOOGLE_KEY),  # not TASKS_INVOKER
    ({"email_verified": False}, GOOGLE_KEY),
    ({"iss": "https://issuer.example"}, GOOGLE_KEY),  # not Google
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, GOOGLE_KEY),  # expired
    ({}, OTHER_KEY),  # not signed by Google
])
def test_tokens_that_do_not_verify_are_refused(cloud_run, claims: dict, key: str) -> None:
    bot, _ = cloud_run
    headers = {"Authorization": f"Bearer {_token(key, **claims)}"}
    assert bot.client.post("/tasks/remind", headers=headers).status_code == 403
    assert bot.client.post("/tasks/flush", headers=headers).status_code == 403


def test_cloud_run_refuses_the_app_engine_header(cloud_run) -> None:
    bot, certs = cloud_run
    assert bot.client.post("/tasks/remind", headers=CRON).status_code == 403
    assert bot.client.post("/tasks/remind", headers={"Authorization": "Bearer x.y.z"}
                           ).status_code == 403


def test_without_tasks_invoker_any_google_signed_token_for_the_audience_gets_in(tmp_path) -> None:
    bot = build_harness(tmp_path, K_SERVICE="seminar-bot", **SQLITE_ON_CLOUD, TASKS_AUDIENCE=SERVICE_URL)
    bot.app.extensions["seminar_google_request"] = CertsServer()
    token = _token(email="other@project.iam.gserviceaccount.com")
    assert bot.client.post("/tasks/remind", headers={"Authorization": f"Bearer {token}"}
                           ).status_code == 200


def test_on_cloud_run_with_no_audience_and_no_token_tasks_are_closed(tmp_path) -> None:
    bot = build_harness(tmp_path, K_SERVICE="seminar-bot", **SQLITE_ON_CLOUD)
    assert bot.settings.tasks.closed_reason()
    bot.app.extensions["seminar_google_request"] = CertsServer()
    assert bot.client.post("/tasks/remind", headers={"Authorization": f"Bearer {_token()}"}
                           ).status_code == 403


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _hs256(**claims: object) -> str:
    """A token that names the right audience but is signed with a shared secret, not Google's key."""
    import base64

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"iss": "https://accounts.google.com", "aud": SERVICE_URL, "email": INVOKER,
               "email_verified": True, "iat": now, "exp": now + 600, **claims}
    return f"{part({'alg': 'HS256', 'kid': 'google-key-1'})}.{part(payload)}.c2lnbmF0dXJl"


@pytest.mark.parametrize("token", [
    "forged.token.x", "x" * 5000, "a.b", "....", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
    _hs256(),
    _token(OTHER_KEY, aud="https://evil.example"),
    _token(OTHER_KEY, iss="https://issuer.example"),
    _token(OTHER_KEY, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    _token(OTHER_KEY, iat=int(time.time()) + 3600, exp=int(time.time()) + 7200),  # from the future
    _token(OTHER_KEY, exp=int(time.time()) + 86400),  # a day long: Google's live an hour
    _token(OTHER_KEY, email="someone@project.iam.gserviceaccount.com"),
    _token(OTHER_KEY, email_verified="true"),
])
def test_forged_and_foreign_tokens_are_refused_before_any_network_call(cloud_run, token) -> None:
    bot, certs = cloud_run
    assert bot.client.post("/tasks/remind", headers=_bearer(token)).status_code == 403
    assert bot.client.post("/tasks/flush", headers=_bearer(token)).status_code == 403
    assert certs.urls == []  # Google was never asked


def test_googles_certificates_are_kept_for_their_max_age(cloud_run) -> None:
    bot, certs = cloud_run
    for token in (_token(), _token(OTHER_KEY), _token(), _token(OTHER_KEY)):
        bot.client.post("/tasks/remind", headers=_bearer(token))
    assert certs.urls == [GOOGLE_CERTS]  # once for four tokens, forged ones too
    certs.max_age = 0  # the next answer may not be kept
    bot.app.extensions["seminar_oidc"].certs.until = 0.0  # the kept ones are out of date
    for _ in range(2):
        assert bot.client.post("/tasks/remind", headers=_bearer(_token())).status_code == 200
    assert certs.urls == [GOOGLE_CERTS] * 3


def test_a_failed_certificate_fetch_is_not_retried_by_every_caller(cloud_run) -> None:
    bot, certs = cloud_run
    certs.status = 503
    for _ in range(5):
        assert bot.client.post("/tasks/remind", headers=_bearer(_token())).status_code == 403
    assert certs.urls == [GOOGLE_CERTS]  # tried once; the others are refused at once


def test_concurrent_callers_share_one_certificate_fetch(cloud_run) -> None:
    import concurrent.futures

    bot, certs = cloud_run
    certs.delay = 0.5
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda t: bot.client.post("/tasks/remind", headers=_bearer(t)
                                                         ).status_code,
                              [_token(OTHER_KEY)] * 8))
    assert certs.urls == [GOOGLE_CERTS]  # one flight
    assert set(codes) <= {403, 429} and 403 in codes


def test_check_warns_when_oidc_lets_in_any_service_account(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TASKS_TOKEN", "GAE_ENV")}
    env.update(WORKBOOK_PATH=str(tmp_path / "seminar.xlsx"), DATA_DIR=str(tmp_path / "var"),
               TASKS_AUDIENCE=SERVICE_URL)
    run = [sys.executable, "-m", "linebot_app", "check"]
    loose = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "! TASKS_INVOKER が未設定です" in loose.stdout, loose.stdout + loose.stderr
    env["TASKS_INVOKER"] = INVOKER
    tight = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "TASKS_INVOKER" not in tight.stdout and "✓ 設定" in tight.stdout


def test_a_flood_of_forged_tokens_is_logged_in_a_few_lines(cloud_run, caplog, monkeypatch) -> None:
    from linebot_app.web import tasks

    bot, _ = cloud_run
    monkeypatch.setattr(tasks, "WARN_EVERY_SECONDS", 0.3)
    with caplog.at_level(logging.WARNING, logger="linebot_app.web.tasks"):
        for _ in range(20):
            bot.client.post("/tasks/remind", headers=_bearer("forged.token.x"))
        time.sleep(0.35)
        bot.client.post("/tasks/remind", headers=_bearer("forged.token.x"))
    lines = [r.getMessage() for r in caplog.records if "refused a /tasks call" in r.getMessage()]
    assert len(lines) == 2 and lines[1].endswith("(and 19 more refused since the last such line)")
