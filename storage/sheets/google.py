"""The Google Sheets backend (gspread): one batchGet per refresh, batched RAW appends, quotas kept.

The only module that imports gspread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import google.auth
import google.auth.credentials
import gspread
import requests
from gspread.exceptions import APIError
from gspread.utils import rowcol_to_a1

from domain.schema import COLUMNS, READ_SHEETS, cell_text
from storage.backend import BackendBusy, BackendError, SheetChanges
from storage.config import GoogleConfig

log = logging.getLogger(__name__)
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
GOOGLE_API = "https://sheets.googleapis.com"
EMULATOR_USER = "seminar-bot@emulator.invalid"
ADC_FILE = Path.home() / ".config" / "gcloud" / "application_default_credentials.json"


class MissingSheet(BackendError):
    """A range named a worksheet the spreadsheet does not have."""


class OutcomeUnknown(BackendError):
    """A write whose result we did not hear: it may or may not have landed."""


class EmulatorHTTPClient(gspread.HTTPClient):
    """gspread's client sending plain HTTP to a Sheets API emulator instead of Google."""

    emulator_host = ""  # set on the instance by open_backend

    def request(self, method: str, endpoint: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        endpoint = endpoint.replace(GOOGLE_API, f"http://{self.emulator_host}", 1)
        return super().request(method, endpoint, **kwargs)


class EmulatorCredentials(google.auth.credentials.Credentials):
    """Dummy credentials for the emulator: the token names the account, nothing is signed."""

    def __init__(self, email: str) -> None:
        super().__init__()
        self.token = email
        self.service_account_email = email

    def refresh(self, request: Any) -> None:
        """Nothing to refresh."""


def credentials(config: GoogleConfig) -> tuple[Any, str]:
    """(credentials, service-account email); dummy ones for an emulator."""
    key_file = config.key_file
    if config.emulator_host:
        email = _email_in(key_file) if key_file else EMULATOR_USER
        return EmulatorCredentials(email), email
    if not (key_file or ADC_FILE.exists() or config.on_google_cloud):
        # nothing to find: say so without probing the metadata server
        raise BackendError("Google の認証情報がありません / no credentials: set "
                           "GOOGLE_APPLICATION_CREDENTIALS or run on Google Cloud")
    try:
        if key_file:
            creds, _ = google.auth.load_credentials_from_file(key_file, scopes=SCOPES)
        else:
            creds, _ = google.auth.default(scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError as err:
        raise BackendError(f"Google の認証情報がありません / no credentials: {err}") from err
    return creds, getattr(creds, "service_account_email", "") or "(ADC user)"


def _email_in(key_file: str) -> str:
    try:
        return str(json.loads(Path(key_file).read_text(encoding="utf-8"))["client_email"])
    except (OSError, ValueError, KeyError) as err:
        raise BackendError(f"サービスアカウントの鍵ファイルを読めません: {key_file}") from err


class GoogleBackend:
    """Reads all sheets in one batchGet; appends with RAW + INSERT_ROWS; updates cells by id."""

    def __init__(self, client: gspread.Client, spreadsheet_id: str, email: str,
                 take_quota: Callable[[str], bool]) -> None:
        self.http = client.http_client
        self.sid = spreadsheet_id
        self.email = email
        self.take_quota = take_quota
        self.titles: set[str] | None = None
        self.headers: dict[str, list[str]] = {}

    def describe(self) -> str:
        """Where the data lives, for logs."""
        return f"Google spreadsheet {self.sid} as {self.email}"

    def version(self) -> None:
        """No cheap change token: the Store refreshes on its TTL."""
        return None

    def _call(self, kind: str, send: Callable[[], Any]) -> Any:
        """One API call within our quota, with transport errors turned into ours."""
        if not self.take_quota(kind):
            raise BackendBusy(f"{kind} quota for this minute is used up")
        try:
            return send()
        except APIError as err:
            raise _api_error(err, self.email) from err
        except (requests.Timeout, requests.ConnectionError) as err:
            raise OutcomeUnknown(f"no answer from Sheets: {type(err).__name__}") from err

    def sheet_titles(self) -> set[str]:
        """The worksheet titles (one metadata read; cached)."""
        if self.titles is None:
            meta = self._call("read", lambda: self.http.fetch_sheet_metadata(
                self.sid, params={"includeGridData": "false"}))
            self.titles = {s["properties"]["title"] for s in meta.get("sheets", [])}
        return self.titles

    def read(self) -> dict[str, list[list[Any]]]:
        """Every sheet's rows in one values:batchGet (formatted, so ids stay text).

        The first try asks for all our sheets without reading the metadata; only when one is
        missing are the titles looked up, so a warm start costs a single read.
        """
        present = [s for s in READ_SHEETS if self.titles is None or s in self.titles]
        try:
            got = self._batch_get(present)
        except MissingSheet:
            self.titles = None
            present = [s for s in READ_SHEETS if s in self.sheet_titles()]
            got = self._batch_get(present)
        raw = {s: vr.get("values", []) for s, vr in zip(present, got["valueRanges"], strict=True)}
        self.headers.update({s: [cell_text(h).lower() for h in rows[0]] for s, rows in raw.items()
                             if rows})
        return raw

    def _batch_get(self, sheets: list[str]) -> Any:
        return self._call("read", lambda: self.http.values_batch_get(
            self.sid, [_quoted(s) for s in sheets],
            params={"valueRenderOption": "FORMATTED_VALUE", "majorDimension": "ROWS"}))

    def write(self, changes: Sequence[SheetChanges]) -> None:
        """Append new rows and update changed ones, sheet by sheet."""
        for change in changes:
            header = self._columns(change.sheet, change.keys())
            appends = change.appends
            if change.verify and appends:
                present = self._ids(change.sheet, header)
                appends = [r for r in appends if str(r["id"]) not in present]
            if appends:
                self._append(change.sheet, header, appends)
            if change.updates:
                self._update(change.sheet, header, change.updates)

    def _columns(self, sheet: str, keys: list[str]) -> list[str]:
        """The sheet's header, with any of keys it lacks added at the right (one write)."""
        header = self._header(sheet, keys)
        missing = [k for k in keys if k not in header]
        if missing:
            self.put_rows(sheet, 1, [header + missing])
            self.headers[sheet] = header = header + missing
        return header

    def _header(self, sheet: str, keys: list[str]) -> list[str]:
        if sheet not in self.sheet_titles():
            self.add_sheets([sheet])
            self.put_rows(sheet, 1, [keys])
            self.headers[sheet] = list(keys)
        if sheet not in self.headers:
            got = self._call("read", lambda: self.http.values_get(self.sid, f"{_quoted(sheet)}!1:1"))
            values = got.get("values") or [[]]
            self.headers[sheet] = [cell_text(h).lower() for h in values[0]]
        header = self.headers[sheet]
        if "id" not in header:
            raise BackendError(f"{sheet} シートの見出しに id がありません")
        return header

    def header_row(self, sheet: str) -> list[list[Any]]:
        """A sheet's first row, as read() would give it ([] when the sheet is empty)."""
        got = self._call("read", lambda: self.http.values_get(self.sid, f"{_quoted(sheet)}!1:1"))
        return got.get("values", [])

    def _ids(self, sheet: str, header: list[str]) -> dict[str, int]:
        """id -> row number, read back from the sheet."""
        column = _column(header.index("id") + 1)
        got = self._call("read", lambda: self.http.values_get(
            self.sid, f"{_quoted(sheet)}!{column}:{column}"))
        rows = got.get("values", [])
        return {cell_text(r[0]): n for n, r in enumerate(rows, start=1) if r and n > 1}

    def _append(self, sheet: str, header: list[str], rows: list[dict[str, Any]]) -> None:
        values = [[_cell(row.get(key, "")) for key in header] for row in rows]
        self._call("write", lambda: self.http.values_append(
            self.sid, f"{_quoted(sheet)}!A1",
            params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
            body={"values": values, "majorDimension": "ROWS"}))
        log.info("appended %d rows to %s", len(values), sheet)

    def _update(self, sheet: str, header: list[str], updates: list[tuple[str, dict[str, Any]]]
                ) -> None:
        where = self._ids(sheet, header)
        data = []
        for row_id, fields in updates:
            if row_id not in where:
                log.warning("update for a row that is not in %s; dropped", sheet)
                continue
            data += [{"range": f"{_quoted(sheet)}!{rowcol_to_a1(where[row_id], header.index(k) + 1)}",
                      "values": [[_cell(v)]]} for k, v in fields.items() if k in header]
        if data:
            self._call("write", lambda: self.http.values_batch_update(
                self.sid, body={"valueInputOption": "RAW", "data": data}))

    def add_sheets(self, names: Sequence[str]) -> None:
        """Create worksheets whose first row is frozen (one batchUpdate)."""
        reqs = [{"addSheet": {"properties": {"title": n, "gridProperties": {
            "rowCount": 1000, "columnCount": max(26, len(COLUMNS.get(n, ()))),
            "frozenRowCount": 1}}}} for n in names]
        self._call("write", lambda: self.http.batch_update(self.sid, {"requests": reqs}))
        self.titles = None

    def freeze_header_rows(self, names: Sequence[str]) -> None:
        """Freeze the first row of these worksheets (formatting only; no data changes)."""
        meta = self._call("read", lambda: self.http.fetch_sheet_metadata(
            self.sid, params={"includeGridData": "false"}))
        reqs = [{"updateSheetProperties": {
            "properties": {"sheetId": sh["properties"]["sheetId"],
                           "gridProperties": {"frozenRowCount": 1}},
            "fields": "gridProperties.frozenRowCount"}}
            for sh in meta.get("sheets", []) if sh["properties"]["title"] in names]
        if reqs:
            self._call("write", lambda: self.http.batch_update(self.sid, {"requests": reqs}))

    def put_rows(self, sheet: str, first_row: int, rows: list[list[Any]]) -> None:
        """Write rows from first_row down, as literal values (RAW)."""
        self._call("write", lambda: self.http.values_update(
            self.sid, f"{_quoted(sheet)}!A{first_row}", params={"valueInputOption": "RAW"},
            body={"values": rows, "majorDimension": "ROWS"}))
        self.headers.pop(sheet, None)


def _quoted(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def _column(number: int) -> str:
    return rowcol_to_a1(1, number).rstrip("0123456789")


def _cell(value: Any) -> Any:
    """Values as Sheets should keep them: text stays text (RAW), numbers stay numbers."""
    return "" if value is None else value


def _api_error(err: APIError, email: str) -> BackendError:
    status = err.response.status_code
    if status == 403:
        return BackendError(f"スプレッドシートが {email} に共有されていません "
                            f"(not shared with {email})")
    if status == 404:
        return BackendError("スプレッドシートが見つかりません (GOOGLE_SPREADSHEET_ID)")
    if status == 429:
        return BackendError("Sheets quota exceeded (429)")
    if status == 400 and "Unable to parse range" in str(err):
        return MissingSheet(f"シートがありません / a worksheet is missing: {str(err)[:200]}")
    return BackendError(f"Sheets API {status}: {str(err)[:200]}")


def open_backend(config: GoogleConfig, take_quota: Callable[[str], bool]) -> GoogleBackend:
    """The backend for the configured spreadsheet, through gspread, every call timed out."""
    if not config.spreadsheet_id:
        raise BackendError("GOOGLE_SPREADSHEET_ID is not set")
    creds, email = credentials(config)
    return GoogleBackend(gspread_client(creds, config), config.spreadsheet_id, email, take_quota)


def gspread_client(creds: Any, config: GoogleConfig) -> gspread.Client:
    """gspread's own client and timeout; only an emulator needs the HTTP client changed."""
    if config.emulator_host:
        client = gspread.Client(auth=creds, http_client=EmulatorHTTPClient)
        client.http_client.emulator_host = config.emulator_host  # type: ignore[attr-defined]
    else:
        client = gspread.Client(auth=creds)
    client.set_timeout(config.timeout)
    return client
