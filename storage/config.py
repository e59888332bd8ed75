"""What the Google backend needs to know, handed in by the bot (storage never reads the
environment)."""

from __future__ import annotations

from dataclasses import dataclass

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class GoogleConfig:
    """The spreadsheet, the per-call timeout, the emulator and the credentials to use."""

    spreadsheet_id: str = ""
    timeout: float = TIMEOUT_SECONDS
    emulator_host: str = ""  # host:port of a Sheets API emulator; plain HTTP, dummy credentials
    key_file: str = ""  # GOOGLE_APPLICATION_CREDENTIALS, a service account's JSON key
    on_google_cloud: bool = False  # App Engine or Cloud Run: the metadata server has credentials


@dataclass(frozen=True)
class FirestoreConfig:
    """Where the shared state of several instances lives (STATE_BACKEND=firestore)."""

    project: str = ""  # GOOGLE_CLOUD_PROJECT
    database: str = "(default)"  # FIRESTORE_DATABASE
    namespace: str = "seminar"  # FIRESTORE_NAMESPACE: the document bots/<namespace> holds it all
    timeout: float = 5.0  # FIRESTORE_TIMEOUT_SECONDS, for every call
    emulator_host: str = ""  # FIRESTORE_EMULATOR_HOST (the client library reads it itself)
