"""check --online: the token, the webhook LINE has on record, a webhook test, the spreadsheet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.schema import parse_workbook
from linebot_app.config import Settings
from linebot_app.line.client import LineClient, LineError
from storage.backend import Backend, BackendError


@dataclass(frozen=True)
class Check:
    """One line of the report: ✓ or ✗, what, and what to do next."""

    ok: bool
    what: str
    next_step: str = ""

    def __str__(self) -> str:
        line = f"{'✓' if self.ok else '✗'} {self.what}"
        return line + (f"\n    → {self.next_step}" if self.next_step and not self.ok else "")


def check_token(line: LineClient) -> Check:
    try:
        return Check(True, f"アクセストークン / access token: OK ({line.bot_name()})")
    except LineError as err:
        return Check(False, f"アクセストークンが使えません / token refused: {err}",
                     "LINE Developers コンソールでチャネルアクセストークン(長期)を発行し、"
                     "LINE_CHANNEL_ACCESS_TOKEN に設定してください")


def check_webhook_url(line: LineClient, public_url: str) -> Check:
    expected = public_url.rstrip("/") + "/callback" if public_url else ""
    try:
        on_record = line.webhook_endpoint()
    except LineError as err:
        return Check(False, f"Webhook URL を取得できません / cannot read the webhook URL: {err}")
    if not expected:
        return Check(False, f"PUBLIC_URL が未設定です (LINE の記録: {on_record or 'なし'})",
                     "PUBLIC_URL にこのサーバーの https URL を設定してください")
    if on_record != expected:
        return Check(False, f"Webhook URL が違います / mismatch: LINE={on_record or 'なし'}, "
                     f"expected={expected}",
                     f"python -m linebot_app set-webhook {expected}")
    return Check(True, f"Webhook URL: {on_record}")


def check_webhook_test(line: LineClient) -> Check:
    try:
        ok, detail = line.test_webhook()
    except LineError as err:
        return Check(False, f"Webhook のテストができません / test failed: {err}")
    return Check(ok, f"Webhook のテスト / webhook test: {detail}",
                 "サーバーが動いていて、URL が /callback で終わり、チャネルシークレットが"
                 "LINE_CHANNEL_SECRET と同じか確かめてください")


def check_sheet(open_backend: Callable[[], Backend]) -> list[Check]:
    try:
        backend = open_backend()
        org = parse_workbook(backend.read())
    except BackendError as err:
        return [Check(False, f"スプレッドシート / spreadsheet: {err}",
                      "サービスアカウントのメールアドレスにスプレッドシートを共有してください")]
    if not org.problems:
        return [Check(True, f"スプレッドシート / spreadsheet: {backend.describe()}")]
    return [Check(False, f"スプレッドシート: {p}") for p in org.problems] + [
        Check(False, f"スプレッドシートに {len(org.problems)} 件の問題 / problems",
              "足りないシートと見出しは python -m linebot_app init-sheet で作れます。"
              "読めない行は直してください")]


def check_state(settings: Settings, outbox: Any) -> Check:
    """Where the bot keeps its state; for Firestore, a document written there reads back."""
    if settings.state_backend != "firestore":
        return Check(True, f"状態 / state: SQLite in {settings.data_dir}")
    try:
        outbox.fs.probe()
    except Exception as err:  # any failure is the answer here, said in one line
        emulator = settings.firestore.emulator_host
        return Check(False, f"Firestore に書き込めません / cannot write to Firestore: "
                     f"{type(err).__name__}: {str(err)[:200]}",
                     f"Firestore のエミュレーターが {emulator} で動いているか確かめてください "
                     f"(FIRESTORE_EMULATOR_HOST)" if emulator else
                     "Firestore をネイティブモードで作成し、サービスアカウントに "
                     "roles/datastore.user を付与し、GOOGLE_CLOUD_PROJECT を確かめてください "
                     "(deploy/README.md)")
    return Check(True, f"状態 / state: {outbox.fs.describe()} (書き込みと読み戻し / write and "
                 "read back)")


def run(settings: Settings, line: LineClient, open_backend: Callable[[], Backend],
        outbox: Any = None) -> list[Check]:
    """Every online check, in the order a person would fix them (the sheet's after the state's:
    with Firestore, the count of Sheets calls is kept there)."""
    state = check_state(settings, outbox)
    sheet = check_sheet(open_backend) if state.ok else [
        Check(False, "スプレッドシートは Firestore を直してから確かめます / the spreadsheet is "
              "checked once Firestore works")]
    return [check_token(line), check_webhook_url(line, settings.public_url), check_webhook_test(line),
            state, *sheet]
