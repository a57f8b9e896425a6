"""Who may use the review desk, and proof that a state change came from its own pages.

On 127.0.0.1 the desk is open to whoever is at the machine; on any other address it refuses to start
without a token (a file or $STREETWATCH_REVIEW_TOKEN). A client shows the token as `Authorization:
Bearer ...` (scripts, other services), or once on the login form, which sets a signed, HttpOnly,
SameSite=Strict session cookie carrying the operator's name and a CSRF token. A state-changing request
that rides on the cookie must repeat that CSRF token (header `X-CSRF-Token` or form field `csrf`): a
page on another site can make the browser send the cookie, not read it.

Guessing is slowed and seen: after `FREE_FAILURES` wrong tokens from one client, each further try waits twice as
long as the one before (up to `MAX_WAIT_S`), answered 429 with Retry-After until then, and every failure is a log
line. Logging out revokes the session at once (until it would have expired), not only the browser's cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from detector.errors import ConfigError

COOKIE = "streetwatch_session"
TOKEN_ENV = "STREETWATCH_REVIEW_TOKEN"
SESSION_S = 12 * 3600
FREE_FAILURES = 5  # wrong tokens from one client before the waits start
MAX_WAIT_S = 300.0
FORGET_S = 3600.0  # a client's failures are forgotten after this long without one
TOKEN_FIX = "use a long random token (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_token(path: Path | None, host: str) -> str | None:
    """The token from the file or the environment; None (no login) only on a loopback address."""
    token = None
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"cannot read the token file ({e.strerror or e})", path=path,
                              fix="give a readable file holding the token") from None
    token = token or os.environ.get(TOKEN_ENV) or None
    where = path if path else Path(f"${TOKEN_ENV}")
    if token is not None and len(token) < 16:
        raise ConfigError("the token is shorter than 16 characters", path=where, fix=TOKEN_FIX)
    if token is not None and _guessable(token):
        raise ConfigError("the token repeats a few characters: it is easy to guess", path=where, fix=TOKEN_FIX)
    if token is None and not is_loopback(host):
        raise ConfigError(f"serving on {host} without a token would let anyone on the network review events",
                          fix=f"pass --token-file FILE or set ${TOKEN_ENV}, or bind --host 127.0.0.1")
    return token


def _guessable(token: str) -> bool:
    """Fewer than 6 different characters, or one short pattern over and over (`aaaa…`, `abab…`, `1234…1234`)."""
    if len(set(token)) < 6:
        return True
    return any(token == (token[:k] * (len(token) // k + 1))[:len(token)] for k in range(1, len(token) // 2 + 1))


@dataclass(frozen=True)
class Session:
    name: str
    csrf: str
    via_cookie: bool  # False: a bearer token (no CSRF needed: nothing ambient)
    sid: str = ""  # the session's id, for revoking it at logout
    expires: float = 0.0


class Gate:
    """Signs and checks sessions; `token` None: an open desk on loopback (still CSRF-checked)."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.key = hashlib.sha256(b"streetwatch-session|" + (token or secrets.token_hex(32)).encode()).digest()
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = {}  # session id -> when it would have expired
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (wrong tokens, last one at)

    def wait_s(self, client: str) -> float:
        """How long `client` must wait before its next try (0: it may try now)."""
        with self._lock:
            n, last = self._failures.get(client, (0, 0.0))
        if n < FREE_FAILURES:
            return 0.0
        return max(0.0, last + min(MAX_WAIT_S, 2.0 ** (n - FREE_FAILURES)) - time.time())

    def failed(self, client: str, how: str) -> None:
        now = time.time()
        with self._lock:
            n, last = self._failures.get(client, (0, 0.0))
            n = 1 if now - last > FORGET_S else n + 1
            self._failures[client] = (n, now)
            if len(self._failures) > 10_000:  # a flood of addresses must not grow this without end
                self._failures = {c: f for c, f in self._failures.items() if now - f[1] <= FORGET_S}
        log.warning("review desk: wrong token from %s by %s (%d in a row)", client, how, n,
                    extra={"event": "login_failed"})

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def revoke(self, session: Session) -> None:
        """Logged out: the session is refused from now on, whoever still holds its cookie."""
        now = time.time()
        with self._lock:
            self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
            self._revoked[session.sid] = session.expires

    def bearer_ok(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("bearer ") or self.token is None:
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())

    def token_ok(self, given: str) -> bool:
        return self.token is None or hmac.compare_digest(given.encode(), self.token.encode())  # bytes: any text

    def issue(self, name: str) -> str:
        body = base64.urlsafe_b64encode(json.dumps({"name": name[:64], "csrf": secrets.token_urlsafe(24),
                                                    "sid": secrets.token_urlsafe(12),
                                                    "exp": int(time.time()) + SESSION_S}).encode()).decode()
        return f"{body}.{self._sign(body)}"

    def read(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        body, _, sig = cookie.rpartition(".")
        if not hmac.compare_digest(sig.encode(), self._sign(body).encode()):  # bytes: a forged cookie may be any text
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None
        if int(data.get("exp", 0)) < time.time():
            return None
        sid = str(data.get("sid", ""))
        with self._lock:
            if not sid or sid in self._revoked:
                return None
        return Session(name=str(data["name"]), csrf=str(data["csrf"]), via_cookie=True, sid=sid,
                       expires=float(data["exp"]))

    def _sign(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()
