"""/tasks/*: App Engine's cron header counts only on App Engine; elsewhere the TASKS_TOKEN bearer;
with neither, everything is refused and check says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, build_harness

CRON = {"X-Appengine-Cron": "true"}


@pytest.mark.parametrize("path", ["/tasks/remind", "/tasks/flush"])
def test_the_app_engine_header_is_refused_off_app_engine(tmp_path: Path, path: str) -> None:
    bot = build_harness(tmp_path, TASKS_TOKEN="a-task-token")
    assert bot.client.post(path, headers=CRON).status_code == 403
    assert bot.client.post(path, headers={"Authorization": "Bearer a-task-token"}).status_code \
        == 200


def test_on_app_engine_its_cron_header_gets_in(tmp_path: Path) -> None:
    bot = build_harness(tmp_path, GAE_ENV="standard")
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
    assert "! /tasks/flush と /tasks/remind はすべて 403 を返します" in closed.stdout
    env["TASKS_TOKEN"] = "a-task-token"
    opened = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "403" not in opened.stdout
