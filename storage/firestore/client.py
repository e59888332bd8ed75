"""Firestore, for the state several instances share (STATE_BACKEND=firestore): the client, the
names of documents, and the last good copy of the sheets.

google-cloud-firestore is imported only by this module and its neighbours, and only when the
Firestore backend is built. The client is opened on first use in each process, because gRPC
channels do not survive a fork (gunicorn forks its workers after the app is built).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import urllib.parse
from typing import Any

from storage.config import FirestoreConfig
from storage.sheets import snapshot

log = logging.getLogger(__name__)
ROOT_COLLECTION = "bots"
SNAPSHOT_PART_BYTES = 900_000  # a document holds at most 1 MiB


class Contended(Exception):
    """A decision kept losing races with other instances; LINE delivers the event again."""


def errors() -> tuple[type[BaseException], ...]:
    """What a step raises when Firestore fails or times out, or when it gave up a race."""
    from google.api_core.exceptions import GoogleAPIError

    return (GoogleAPIError, Contended)


def conflicts() -> tuple[type[BaseException], ...]:
    """What a write raises when its precondition fails: the document exists, is gone, or
    changed since it was read (another instance got there first)."""
    from google.api_core.exceptions import AlreadyExists, FailedPrecondition, NotFound

    return (AlreadyExists, FailedPrecondition, NotFound)


def doc_id(*parts: str) -> str:
    """A document id made of parts, each percent-encoded so that '/' and '~' stay inside it."""
    text = "~".join(urllib.parse.quote(str(p), safe="") for p in parts)
    if text in (".", "..") or (text.startswith("__") and text.endswith("__")) or not text:
        text = "~" + text  # ids Firestore reserves
    if len(text.encode()) > 1000:  # ids may have 1,500 bytes
        text = text[:900] + "~" + hashlib.sha256(text.encode()).hexdigest()
    return text


class Firestore:
    """The client (one per process, opened on first use) and the bot's root document."""

    def __init__(self, config: FirestoreConfig) -> None:
        self.config = config
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        """Where the state lives, for logs and check."""
        where = f"emulator {self.config.emulator_host}" if self.config.emulator_host else "Google"
        return (f"Firestore {self.config.project}/{self.config.database} "
                f"{ROOT_COLLECTION}/{self.config.namespace} ({where})")

    def client(self) -> Any:
        """This process's client."""
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                from google.cloud import firestore

                self._client = firestore.Client(project=self.config.project or None,
                                                database=self.config.database)
                self._pid = os.getpid()
            return self._client

    def col(self, name: str) -> Any:
        """One of the bot's collections."""
        return self.client().collection(ROOT_COLLECTION).document(
            doc_id(self.config.namespace)).collection(name)

    def doc(self, collection: str, *parts: str) -> Any:
        """A document of one of the bot's collections, named by parts."""
        return self.col(collection).document(doc_id(*parts))

    @property
    def call(self) -> dict[str, Any]:
        """Keyword arguments for every call: a timeout, and retries bounded by it."""
        from google.api_core.retry import Retry, if_transient_error

        return {"timeout": self.config.timeout,
                "retry": Retry(predicate=if_transient_error, initial=0.1, maximum=1.0,
                               multiplier=2.0, timeout=self.config.timeout)}

    def batch(self) -> Any:
        """A write batch: all its writes land, or none (preconditions included)."""
        return self.client().batch()

    def option(self, **kw: Any) -> Any:
        """A write precondition (exists=..., or last_update_time=...)."""
        return self.client().write_option(**kw)

    def probe(self) -> None:
        """Write a document and read it back (check --online); raises when that fails."""
        ref = self.doc("meta", f"probe-{os.getpid()}")
        ref.set({"at": time.time()}, **self.call)
        if not ref.get(**self.call).exists:
            raise RuntimeError("a document written to Firestore could not be read back")
        ref.delete(**self.call)


class FirestoreSnapshot:
    """The last good copy of the sheets, in Firestore, for a cold start of any instance."""

    def __init__(self, fs: Firestore) -> None:
        self.fs = fs
        self._saved = ""

    def describe(self) -> str:
        """Where the copy is kept, for logs."""
        return f"{self.fs.describe()} meta/snapshot"

    def save(self, sheets_json: str, read_at: float) -> None:
        """Replace the copy when it differs from the one kept (parts first, then the head)."""
        digest = hashlib.sha256(sheets_json.encode()).hexdigest()
        if digest == self._saved:
            return
        head = self.fs.doc("meta", "snapshot")
        known = head.get(**self.fs.call)
        if known.exists and known.get("digest") == digest:
            self._saved = digest
            return
        data = sheets_json.encode()
        parts = [data[i:i + SNAPSHOT_PART_BYTES] for i in range(0, len(data), SNAPSHOT_PART_BYTES)]
        for n, part in enumerate(parts):
            self.fs.doc("meta", f"snapshot-{digest[:16]}-{n}").set({"data": part}, **self.fs.call)
        head.set({"digest": digest, "parts": len(parts), "read_at": read_at}, **self.fs.call)
        self._saved = digest
        if known.exists:  # the parts of the copy replaced
            for n in range(known.get("parts")):
                self.fs.doc("meta", f"snapshot-{known.get('digest')[:16]}-{n}").delete(
                    **self.fs.call)

    def load(self) -> tuple[dict[str, list[list[Any]]], float] | None:
        """(the raw sheets, when they were read), or None when there is no usable copy."""
        head = self.fs.doc("meta", "snapshot").get(**self.fs.call)
        if not head.exists:
            return None
        digest, count = head.get("digest"), head.get("parts")
        refs = [self.fs.doc("meta", f"snapshot-{digest[:16]}-{n}") for n in range(count)]
        parts = {d.id: d.get("data") for d in self.fs.client().get_all(refs, **self.fs.call)
                 if d.exists}
        if len(parts) != count:
            log.warning("the copy of the sheets in Firestore is incomplete; not used")
            return None
        return snapshot.loads(b"".join(parts[r.id] for r in refs).decode()), float(
            head.get("read_at"))
