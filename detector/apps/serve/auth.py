"""Who may use the review desk, and proof that a state change came from its own pages.

On 127.0.0.1 the desk is open to whoever is at the machine; on any other address it refuses to start
without a token (a file or $STREETWATCH_REVIEW_TOKEN). A client shows the token as `Authorization:
Bearer ...` (scripts, other services), or once on the login form, which sets a signed, HttpOnly,
SameSite=Strict session cookie carrying the operator's name and a CSRF token. A state-changing request
that rides on the cookie must repeat that CSRF token (header `X-CSRF-Token` or form field `csrf`): a
page on another site can make the browser send the cookie, not read it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from detector.errors import ConfigError

COOKIE = "streetwatch_session"
TOKEN_ENV = "STREETWATCH_REVIEW_TOKEN"
SESSION_S = 12 * 3600


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
    if token is not None and len(token) < 16:
        raise ConfigError("the token is shorter than 16 characters", path=path if path else Path(f"${TOKEN_ENV}"),
                          fix="use a long random token (python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if token is None and not is_loopback(host):
        raise ConfigError(f"serving on {host} without a token would let anyone on the network review events",
                          fix=f"pass --token-file FILE or set ${TOKEN_ENV}, or bind --host 127.0.0.1")
    return token


@dataclass(frozen=True)
class Session:
    name: str
    csrf: str
    via_cookie: bool  # False: a bearer token (no CSRF needed: nothing ambient)


class Gate:
    """Signs and checks sessions; `token` None: an open desk on loopback (still CSRF-checked)."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.key = hashlib.sha256(b"streetwatch-session|" + (token or secrets.token_hex(32)).encode()).digest()

    def bearer_ok(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("bearer ") or self.token is None:
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())

    def token_ok(self, given: str) -> bool:
        return self.token is None or hmac.compare_digest(given.encode(), self.token.encode())  # bytes: any text

    def issue(self, name: str) -> str:
        body = base64.urlsafe_b64encode(json.dumps({"name": name[:64], "csrf": secrets.token_urlsafe(24),
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
        return Session(name=str(data["name"]), csrf=str(data["csrf"]), via_cookie=True)

    def _sign(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()
