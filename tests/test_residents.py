"""Residents' lookup, export and the rich menu."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import openpyxl
import pytest
import requests

from linebot_app.features.facilities import distance_m
from linebot_app.line import richmenu
from linebot_app.ops.export import collect, write_csv, write_xlsx
from tests.conftest import ROOT, BotHarness, run_export, text_event
from tests.test_simulator import STAFF_A, Sim, sim  # noqa: F401  (the live simulator fixture)

HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@IMPORTXML(x)", "\t=1", "\r=2", "普通の名前"]


def _location(lat: float, lng: float) -> dict:
    event = text_event("x")
    event["message"] = {"id": "9", "type": "location", "latitude": lat, "longitude": lng}
    return event


def test_distance_is_a_great_circle() -> None:
    assert 9_900 < distance_m(34.69, 135.19, 34.78, 135.19) < 10_100


def test_a_location_gets_the_three_nearest_facilities(bot: BotHarness) -> None:
    bot.post(_location(34.7040, 135.2060))
    (message,) = bot.line.replies[-1][1]
    bubbles = message["contents"]["contents"]
    assert message["type"] == "flex" and len(bubbles) == 3
    assert bubbles[0]["body"]["contents"][0]["text"].startswith("港北中学校")
    assert "約" in bubbles[0]["body"]["contents"][2]["text"]
    assert "google.com/maps" in bubbles[0]["footer"]["contents"][0]["action"]["uri"]


def test_a_category_word_works_as_a_query(bot: BotHarness) -> None:
    bot.say("避難所")
    carousel, hint = bot.line.replies[-1][1]
    assert len(carousel["contents"]["contents"]) == 3 and "位置情報" in hint["text"]


def test_export_csv_has_a_bom_and_neutralises_formulas(bot: BotHarness, tmp_path) -> None:
    for n, name in enumerate(HOSTILE):
        bot.line.display_name = lambda user_id, name=name: name
        bot.consent(f"U{n:032x}")
        bot.say("参加登録 E2 見学 経験者" if n > 3 else "参加登録 E2 参加 初心者", user=f"U{n:032x}")
    out = tmp_path / "e2.csv"
    regs, _ = collect(bot.store, "E2")
    write_csv(out, regs)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines(keepends=True)))
    names = [r["display_name"] for r in rows]
    assert names[:6] == ["'" + h for h in HOSTILE[:6]] and names[6] == "普通の名前"
    assert all(not str(v).startswith(("=", "+", "-", "@", "\t", "\r"))
               for r in rows for v in r.values())


def test_export_xlsx_stores_hostile_names_as_text(bot: BotHarness, tmp_path) -> None:
    bot.line.display_name = lambda user_id: HOSTILE[0]
    bot.consent("U" + "5" * 32)
    bot.say("参加登録 E2 参加 初心者", user="U" + "5" * 32)
    out = tmp_path / "e2.xlsx"
    write_xlsx(out, *collect(bot.store, "E2"))
    cell = openpyxl.load_workbook(out)["registrations"]["D2"]
    assert cell.value == "'" + HOSTILE[0] and cell.data_type == "s"


def test_export_command_shows_progress_on_long_exports(tmp_path) -> None:
    from tests.conftest import build_harness

    harness = build_harness(tmp_path)
    for n in range(1500):
        harness.store.add("registrations", {"id": f"R{n:05d}", "event_id": "E2",
                                            "user_id": f"U{n:032x}", "role": "participant",
                                            "status": "confirmed"})
    harness.store.drain(seconds=10)
    out = tmp_path / "big.csv"
    result = run_export(harness.settings, tmp_path / "var", "E2", out)
    assert result.returncode == 0, result.stderr
    assert "1000/1500" in result.stderr and "1500/1500" in result.stderr
    assert len(out.read_text(encoding="utf-8-sig").splitlines()) == 1501


def test_the_repo_rich_menu_is_within_lines_limits() -> None:
    menu, image = richmenu.load(ROOT / "deploy/richmenu.json", ROOT / "deploy/richmenu.png")
    assert richmenu.problems(menu, image) == []
    labels = [a["action"]["text"] for a in menu["areas"]]
    assert labels == ["イベント", "予定", "参加登録", "登録確認", "感想", "ヘルプ"]


@pytest.mark.parametrize("change,words", [
    (lambda m: m.update(chatBarText="とても長いチャットバーのテキストです"), "14文字"),
    (lambda m: m.update(areas=m["areas"] * 4), "1〜20"),
    (lambda m: m.update(size={"width": 2500, "height": 2000}), "1.45"),
])
def test_rich_menu_limits_are_enforced(change, words: str) -> None:
    menu, image = richmenu.load(ROOT / "deploy/richmenu.json", ROOT / "deploy/richmenu.png")
    change(menu)
    assert any(words in p for p in richmenu.problems(menu, image))


def test_richmenu_command_installs_the_menu_through_the_simulator(sim: Sim) -> None:  # noqa: F811
    env = {**os.environ, "LINE_CHANNEL_SECRET": sim.platform.secret,
           "LINE_CHANNEL_ACCESS_TOKEN": sim.platform.token,
           "LINE_API_BASE_URL": f"{sim.url}/simulator/line"}
    preset = sim.platform.default_richmenu
    result = subprocess.run([sys.executable, "-m", "linebot_app", "richmenu"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sim.platform.default_richmenu != preset
    assert list(sim.platform.richmenus) == [sim.platform.default_richmenu]  # the old one is gone
    shown = requests.get(f"{sim.url}/simulator/api/richmenu", timeout=10).json()
    assert shown["chatBarText"] == "メニュー" and len(shown["areas"]) == 6
    image = requests.get(sim.url + shown["image"], timeout=10)
    assert image.content[:4] == b"\x89PNG"


def test_simulator_sends_a_location(sim: Sim) -> None:  # noqa: F811
    assert sim.send(STAFF_A, kind="location", latitude=34.6901, longitude=135.1955) == 200
    assert "みなと市役所" in sim.bot_texts(STAFF_A)[-1]
