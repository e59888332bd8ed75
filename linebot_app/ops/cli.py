"""The command-line entry points: serve (make run), check and init-sheet."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from linebot_app.config import ConfigError, Settings, cloud_project
from linebot_app.logs import configure

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    """Parse the sub-command and run it."""
    parser = argparse.ArgumentParser(prog="python -m linebot_app")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="start the bot (and the simulator in simulator mode)")
    check_cmd = sub.add_parser("check", help="check the configuration and the spreadsheet")
    check_cmd.add_argument("--online", action="store_true",
                           help="also ask LINE (token, webhook) and open the spreadsheet")
    hook = sub.add_parser("set-webhook", help="set the webhook URL at LINE, then test it")
    hook.add_argument("url")
    init = sub.add_parser("init-sheet", help="prepare the Google spreadsheet")
    init.add_argument("--from", dest="source", type=Path, help="copy organizer sheets from a workbook")
    init.add_argument("--admin", action="append", default=[], metavar="Uxxxxxxxx",
                      help="an organizer's LINE user id for admin_user_ids (repeat for more)")
    export = sub.add_parser("export", help="write an event's registrations and feedback")
    export.add_argument("event_id")
    export.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    export.add_argument("--out", type=Path)
    menu = sub.add_parser("richmenu", help="upload the default rich menu")
    menu.add_argument("--file", type=Path, default=Path("deploy/richmenu.json"))
    menu.add_argument("--image", type=Path, default=Path("deploy/richmenu.png"))
    args = parser.parse_args(argv)
    configure(cloud_project())
    commands = {"serve": serve, "check": check, "init-sheet": init_sheet, "export": export_event,
                "richmenu": rich_menu, "set-webhook": set_webhook}
    return commands[args.command](args)


def _settings(*, storage: bool = True, **overrides: str) -> Settings | None:
    try:
        return Settings.from_env(storage=storage, **overrides)
    except ConfigError as err:
        _print_problems(err.problems)
        return None


def _print_problems(problems: list[str]) -> int:
    for problem in problems:
        print(f"✗ {problem}")
    return 1


def check(args: argparse.Namespace) -> int:
    """Print every problem in the configuration and the sheets; non-zero if any."""
    from linebot_app.wiring import build_backend, build_outbox
    from storage.backend import BackendError
    from storage.local.sqlite import LocalStorageError, check_local_files

    settings = _settings()
    if settings is None:
        return 1
    if args.online:
        return run_online_checks(settings)
    from linebot_app.ops.check_online import check_state

    try:
        if settings.state_backend == "sqlite":
            check_local_files(settings.data_dir)
        outbox = build_outbox(settings)
        state = check_state(settings, outbox)
        print(state)
        if not state.ok:
            return 1
        backend = build_backend(settings, outbox)
        raw = backend.read()
    except LocalStorageError as err:
        return _print_problems(err.problems)
    except BackendError as err:
        return _print_problems([str(err)])
    return _report_sheets(settings, backend.describe(), outbox, raw)


def _report_sheets(settings: Settings, where: str, outbox: Any, raw: Any) -> int:
    """The second half of check: the sheets as read, their problems and rows to repair."""
    from domain.schema import parse_workbook

    print(f"✓ 設定 / configuration: {where}")
    for warning in (settings.tasks.closed_reason(),  # fine for make run (its scheduler runs)
                    settings.tasks.loose_reason()):
        if warning:
            print(f"! {warning}")
    org = parse_workbook(raw)
    _print_problems([str(p) for p in org.problems])
    stuck = _print_repairs(outbox, raw, org)
    asked = sum(1 for row in org.bot_rows.get("unanswered", [])
                if not str(row.get("status") or "").strip())  # unmarked by organizers
    if asked:
        print(f"! 答えられなかった質問 / unanswered questions: {asked}件 (unanswered シート、"
              "LINE で「未回答」)")
    if org.problems:
        print(f"{len(org.problems)} 件の問題 / problems")
    else:
        print(f"✓ シート / sheets: イベント{len(org.events)}件, 予定{len(org.schedule)}件, "
              f"FAQ{len(org.faq)}件")
    return 1 if org.problems or stuck else 0


def _print_repairs(outbox: Any, raw: Any, org: Any) -> int:
    """Rows the bot wrote that the sheet lost (the bot writes them again); how many it cannot."""
    from storage.store import ledger_repairs

    stuck = 0
    for repairs in ledger_repairs(outbox, raw, org, time.time()):
        if repairs.lost or repairs.stuck:
            mark = "✗" if repairs.stuck else "!"
            print(f"{mark} ボットが書いた行がシートから消えたか古い値に戻っています"
                  f"{'' if repairs.stuck else ' (ボットが書き直します)'} / {repairs.summary()}")
        stuck += len(repairs.stuck)
    return stuck


def run_online_checks(settings: Settings) -> int:
    """Ask LINE and open the spreadsheet; one ✓/✗ line per check."""
    from linebot_app.line.client import LineClient
    from linebot_app.ops import check_online
    from linebot_app.wiring import build_backend, build_outbox

    print(f"✓ 設定 / configuration: LINE {settings.line_api_base_url}, "
          f"backend={settings.sheets_backend}, state={settings.state_backend}")
    line = LineClient(settings.channel_access_token, settings.line_api_base_url)
    outbox = build_outbox(settings)
    checks = check_online.run(settings, line, lambda: build_backend(settings, outbox), outbox)
    for item in checks:
        print(item)
    return 0 if all(c.ok for c in checks) else 1


def set_webhook(args: argparse.Namespace) -> int:
    """Set the webhook URL through the Messaging API, then have LINE test it."""
    from linebot_app.line.client import LineClient, LineError

    settings = _settings(storage=False)
    if settings is None:
        return 1
    line = LineClient(settings.channel_access_token, settings.line_api_base_url)
    try:
        line.set_webhook_endpoint(args.url)
        ok, detail = line.test_webhook()
    except LineError as err:
        print(f"✗ Webhook URL を設定できません / could not set it: {err}")
        return 1
    print(f"✓ Webhook URL を設定しました / set: {args.url}")
    print(f"{'✓' if ok else '✗'} Webhook のテスト / test: {detail}")
    return 0 if ok else 1


def init_sheet(args: argparse.Namespace) -> int:
    """Create what the Google spreadsheet lacks; with --from, copy the organizer sheets."""
    from domain.schema import admin_id_problems
    from linebot_app.wiring import build_outbox, quota_taker
    from storage.backend import BackendError
    from storage.sheets.google import open_backend
    from storage.sheets.init_sheet import initialize

    settings = _settings(SHEETS_BACKEND="google")
    if settings is None:
        return 1
    if args.source and not args.source.exists():
        print(f"✗ ワークブックがありません / no workbook: {args.source}")
        return 1
    admins = ",".join(a.strip() for a in args.admin)
    found = admin_id_problems(admins)
    for problem in found:
        print(f"✗ --admin: {problem}")
    if found:
        return 1
    try:
        backend = open_backend(settings.google, quota_taker(settings, build_outbox(settings)))
        for line in initialize(backend, args.source, admins):
            print(line if line.startswith("! ") else f"✓ {line}")
    except BackendError as err:
        print(f"✗ {err}")
        return 1
    print(f"完了 / done: {backend.describe()}")
    return 0


def export_event(args: argparse.Namespace) -> int:
    """Export one event to CSV or .xlsx and say where it went."""
    from linebot_app.ops.export import collect, write_csv, write_xlsx
    from linebot_app.wiring import build_store

    settings = _settings()
    if settings is None:
        return 1
    store = build_store(settings)
    org = store.reload()
    event = org.event(args.event_id)
    if event is None:
        print(f"✗ イベントがありません / no such event: {args.event_id}")
        return 1
    regs, feedback = collect(store, event.id)
    out = args.out or Path(f"export-{event.id}.{args.format}")
    if args.format == "csv":
        write_csv(out, regs, feedback)
    else:
        write_xlsx(out, regs, feedback)
    print(f"✓ {out}: 登録 {len(regs)} 件, 感想 {len(feedback)} 件 / registrations, feedback")
    return 0


def rich_menu(args: argparse.Namespace) -> int:
    """Check the menu against LINE's limits, then install it as the default."""
    from linebot_app.line import richmenu
    from linebot_app.line.client import LineClient, LineError

    settings = _settings(storage=False)
    if settings is None:
        return 1
    menu, image = richmenu.load(args.file, args.image)
    found = richmenu.problems(menu, image)
    for problem in found:
        print(f"✗ {problem}")
    if found:
        return 1
    line = LineClient(settings.channel_access_token, settings.line_api_base_url)
    try:
        new, old = line.install_rich_menu(menu, image, richmenu.image_size(image)[0])
    except LineError as err:
        print(f"✗ LINE がリッチメニューを受け付けませんでした / refused: {err}")
        return 1
    print(f"✓ リッチメニューを既定にしました / default rich menu: {new}")
    for menu_id in old:
        print(f"✓ 古いメニューを削除しました / deleted: {menu_id}")
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run the app under gunicorn with the flusher hooks; print the URLs."""
    settings = _settings()
    if settings is None:
        return 1
    from linebot_app import create_app
    from linebot_app.ops import gunicorn_conf
    from linebot_app.ops.serving import run_gunicorn
    from storage.local.sqlite import LocalStorageError

    try:
        app = create_app(settings)
    except LocalStorageError:  # create_app has logged each problem with its fix
        return 1
    _announce(settings, f"http://127.0.0.1:{settings.port}")
    options = {key: getattr(gunicorn_conf, key) for key in (
        "worker_class", "threads", "timeout", "graceful_timeout", "control_socket_disable",
        "post_worker_init", "worker_exit")}
    run_gunicorn(app, {**options, "bind": f"127.0.0.1:{settings.port}", "workers": 1})
    return 0


def _announce(settings: Settings, base: str) -> None:
    where = (f"Google spreadsheet {settings.google.spreadsheet_id}"
             if settings.sheets_backend == "google" else str(settings.workbook_path))
    fs = settings.firestore
    state = (f"Firestore {fs.project}/{fs.database} bots/{fs.namespace}"
             if settings.state_backend == "firestore" else f"SQLite in {settings.data_dir}")
    print(f"\n  Bot webhook : {base}/callback\n  Simulator   : {base}/simulator\n"
          f"  Data        : {where}\n  State       : {state}\n", flush=True)
