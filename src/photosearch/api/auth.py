"""Passwords, login throttling and the cookie/CSRF rules shared by the API and the web pages.

Passwords use scrypt from the standard library (memory-hard, no extra dependency). Sessions are
server-side (`db/sessions.py`): the cookie holds a random token, so logout really ends a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta

SESSION_COOKIE = "photosearch_session"
LOGIN_CSRF_COOKIE = "photosearch_login_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL = timedelta(days=7)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
MIN_NEW_PASSWORD = 8  # for passwords set from now on (sign-up, `users passwd`); logins check any stored one
_MAX_PASSWORD = 1024  # scrypt cost is independent of length, but refuse absurd inputs early


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# Password hashing is deliberately slow (~50 ms of one core, 16 MB): at most this many at once, so a flood of
# logins queues here instead of taking every core from searches.
_HASH_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    with _HASH_SLOTS:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash`: parameters travel with the hash so they can be raised later."""
    if not password:
        raise ValueError("the password must not be empty")
    if len(password) > _MAX_PASSWORD:
        raise ValueError(f"the password is longer than {_MAX_PASSWORD} characters")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


_DUMMY_HASH: str | None = None


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check. With no stored hash a dummy hash is still computed, so timing does not
    reveal which emails exist."""
    global _DUMMY_HASH
    if not stored:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password("dummy-password")
        stored = _DUMMY_HASH
        password = password + "\0never-matches"
    if len(password) > _MAX_PASSWORD:
        return False
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        got = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
        return hmac.compare_digest(got, _unb64(digest))
    except (ValueError, TypeError):
        return False


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def normalize_email(email: str) -> str:
    """The one form of a login identity: the throttle and the account lookup must agree on who is meant."""
    return email.strip().lower()


@dataclass
class _Strikes:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    lockouts: int = 0  # each lockout lasts twice the one before, up to MAX_LOCKOUT_S


class LoginThrottle:
    """Refuse password checks after repeated failures, per account and per client address.

    An account locks after `account_limit` failures within `window_s`, whichever client sent them; a client
    locks after `client_limit` failures over any accounts (random-email sprays). A lock lasts `window_s`, then
    twice as long for each further lock of the same key (backoff), up to MAX_LOCKOUT_S. While an account is
    locked even its right password gets 429: checking it would tell a guesser when a guess was right.
    The real user logs in once the lock passes; a success clears the account's record."""

    MAX_LOCKOUT_S = 3600.0

    def __init__(self, account_limit: int = 10, client_limit: int = 50, window_s: float = 300.0) -> None:
        self.account_limit = account_limit
        self.client_limit = client_limit
        self.window_s = window_s
        self._keys: dict[tuple[str, str], _Strikes] = defaultdict(_Strikes)
        self._lock = threading.Lock()

    def _keys_of(self, email: str, client: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("account", normalize_email(email)), ("client", client)

    def retry_after(self, email: str, client: str) -> float:
        """Seconds until a login for this account from this client may be checked again; 0 = now."""
        now = time.monotonic()
        with self._lock:
            held = [self._keys[k] for k in self._keys_of(email, client) if k in self._keys]
            return max([0.0] + [k.locked_until - now for k in held])

    def blocked(self, email: str, client: str) -> bool:
        return self.retry_after(email, client) > 0

    def failed(self, email: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._keys) > 50_000:  # sprayed emails: forget what has expired, keep memory bounded
                for key in [k for k, v in self._keys.items() if v.locked_until < now and not self._prune(v, now)]:
                    del self._keys[key]
            for key, limit in zip(self._keys_of(email, client), (self.account_limit, self.client_limit), strict=True):
                strikes = self._keys[key]
                self._prune(strikes, now)
                strikes.failures.append(now)
                if len(strikes.failures) >= limit:
                    strikes.locked_until = now + min(self.window_s * 2**strikes.lockouts, self.MAX_LOCKOUT_S)
                    strikes.lockouts += 1
                    strikes.failures.clear()

    def _prune(self, strikes: _Strikes, now: float) -> int:
        cutoff = now - self.window_s
        while strikes.failures and strikes.failures[0] < cutoff:
            strikes.failures.popleft()
        return len(strikes.failures)

    def succeeded(self, email: str, client: str) -> None:
        """Clear the account's record (not the client's: one valid login must not reset a guesser's count)."""
        with self._lock:
            self._keys.pop(self._keys_of(email, client)[0], None)
