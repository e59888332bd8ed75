"""Cloud Scheduler's OIDC tokens, checked cheaply. A token's header and claims are read before
any network call, so a forged or foreign token is refused at once; Google's certificates are
kept for their Cache-Control max-age and fetched by one thread at a time; and at most a few
tokens are checked at once, so /tasks/* callers cannot take the threads that answer /callback."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

GOOGLE_CERTS = "https://www.googleapis.com/oauth2/v1/certs"
ISSUERS = ("accounts.google.com", "https://accounts.google.com")
ALGORITHM = "RS256"
CLOCK_SKEW_SECONDS = 10
LONGEST_LIFE_SECONDS = 3600  # Google's ID tokens live an hour
CERTS_TIMEOUT_SECONDS = 2.0
CERTS_DEFAULT_SECONDS = 300  # kept this long when Google sends no max-age
CERTS_LONGEST_SECONDS = 6 * 3600
RETRY_AFTER_FAILURE_SECONDS = 30  # a failed fetch is not tried again before this
CHECKING_AT_ONCE = 2
MAX_AGE = re.compile(r"max-age=(\d+)")


class Refused(Exception):
    """Why a token is refused (said in the log, never to the caller)."""


class Busy(Exception):
    """Too many tokens are being checked right now; the caller may try again."""


def claims_fit(token: str, audience: str, invoker: str, now: float) -> Mapping[str, Any]:
    """The token's claims, read without checking its signature (no network), when its header
    and claims are what Cloud Scheduler sends for this service; else Refused."""
    from google.auth import jwt

    try:
        header = jwt.decode_header(token)
        claims = jwt.decode(token, verify=False)
    except (ValueError, TypeError, UnicodeError) as err:
        raise Refused(f"not a JWT ({str(err)[:80]})") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Refused("not a JWT")
    issued, expires = claims.get("iat"), claims.get("exp")
    for reason, wrong in (
            ("algorithm", header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str)),
            ("issuer", claims.get("iss") not in ISSUERS),
            ("audience", claims.get("aud") != audience),
            ("times", not all(isinstance(t, int) for t in (issued, expires))),
            ("expired", isinstance(expires, int) and expires < now - CLOCK_SKEW_SECONDS),
            ("issued later", isinstance(issued, int) and issued > now + CLOCK_SKEW_SECONDS),
            ("lifetime", isinstance(issued, int) and isinstance(expires, int)
             and expires - issued > LONGEST_LIFE_SECONDS),
            ("invoker", bool(invoker) and not (claims.get("email") == invoker
                                               and claims.get("email_verified") is True))):
        if wrong:
            raise Refused(f"{reason} does not fit (email {claims.get('email')!r})")
    return claims


class GoogleCerts:
    """Google's token certificates, fetched when first needed, kept for their max-age, fetched
    by one thread while the others wait for it (up to the fetch's timeout)."""

    def __init__(self, transport: Callable[..., Any],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.clock = clock
        self.lock = threading.Lock()
        self.certs: Mapping[str, str] = {}
        self.until = 0.0  # kept until then
        self.failed = -RETRY_AFTER_FAILURE_SECONDS  # when the last fetch failed

    def get(self) -> Mapping[str, str]:
        """The current certificates, or Refused when they cannot be had now."""
        if self.certs and self.clock() < self.until:
            return self.certs
        if not self.lock.acquire(timeout=CERTS_TIMEOUT_SECONDS):
            raise Refused("Google's certificates are being fetched by another call")
        try:
            now = self.clock()
            if self.certs and now < self.until:
                return self.certs  # another thread fetched them while this one waited
            if now - self.failed < RETRY_AFTER_FAILURE_SECONDS:
                raise Refused("Google's certificates could not be fetched a moment ago")
            try:
                self.certs, self.until = self._fetch(now)
            except Exception as err:  # any transport failure: refuse, try again later
                self.failed = now
                raise Refused(f"Google's certificates could not be fetched ({err!r:.120})") from None
            return self.certs
        finally:
            self.lock.release()

    def _fetch(self, now: float) -> tuple[Mapping[str, str], float]:
        import json

        response = self.transport(GOOGLE_CERTS, method="GET", timeout=CERTS_TIMEOUT_SECONDS)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        certs = json.loads(response.data.decode("utf-8"))
        if not isinstance(certs, dict) or not certs:
            raise RuntimeError("no certificates in the answer")
        control = {k.lower(): v for k, v in dict(response.headers or {}).items()}
        found = MAX_AGE.search(str(control.get("cache-control", "")))
        keep = int(found.group(1)) if found else CERTS_DEFAULT_SECONDS
        return certs, now + min(keep, CERTS_LONGEST_SECONDS)


class Verifier:
    """Checks tokens for one audience (and invoker): the claims first, then the signature
    against the cached certificates, a few at a time."""

    def __init__(self, certs: GoogleCerts, audience: str, invoker: str) -> None:
        self.certs = certs
        self.audience = audience
        self.invoker = invoker
        self.slots = threading.BoundedSemaphore(CHECKING_AT_ONCE)

    def verify(self, token: str) -> Mapping[str, Any]:
        """The verified claims; Refused or Busy otherwise."""
        from google.auth import exceptions, jwt

        claims_fit(token, self.audience, self.invoker, time.time())
        if not self.slots.acquire(timeout=CERTS_TIMEOUT_SECONDS):
            raise Busy("too many /tasks tokens are being checked at once")
        try:
            certs = self.certs.get()
            try:
                return jwt.decode(token, certs=certs, audience=self.audience,
                                  clock_skew_in_seconds=CLOCK_SKEW_SECONDS)
            except (ValueError, exceptions.GoogleAuthError) as err:
                raise Refused(f"does not verify ({str(err)[:120]})") from None
        finally:
            self.slots.release()
