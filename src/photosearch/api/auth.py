"""Passwords, login throttling and the cookie/CSRF rules shared by the API and the web pages.

Passwords use scrypt from the standard library (memory-hard, no extra dependency). Sessions are
server-side (`db/sessions.py`): the cookie holds a random token, so logout really ends a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
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


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
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


class LoginThrottle:
    """Refuse logins for an (email, client) after too many recent failures: slows password guessing
    without locking the real user out from another address."""

    def __init__(self, max_failures: int = 10, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._failures[key]
        cutoff = time.monotonic() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def blocked(self, email: str, client: str) -> bool:
        with self._lock:
            return len(self._recent((email.lower(), client))) >= self.max_failures

    def failed(self, email: str, client: str) -> None:
        with self._lock:
            if len(self._failures) > 50_000:  # sprayed emails: forget what has expired, keep memory bounded
                for key in [k for k in self._failures if not self._recent(k)]:
                    del self._failures[key]
            self._recent((email.lower(), client)).append(time.monotonic())

    def succeeded(self, email: str, client: str) -> None:
        with self._lock:
            self._failures.pop((email.lower(), client), None)
