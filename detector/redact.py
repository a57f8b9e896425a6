"""One redaction point for every string that leaves the process: log records, `/healthz`, metrics,
events and error messages. Camera URLs carry credentials (`rtsp://user:secret@host/...`, `?token=...`);
FFmpeg and socket errors repeat the URL they failed on, so redacting the one `source` field is not
enough: every outgoing string passes `redact()`.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

# scheme://userinfo@ -> scheme://  (userinfo: anything up to the @ before the host, no slash or space)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s'\"<>]+@")
# ?token=... &password=... (query parameters that hold secrets)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|token|access_token|auth|authorization|key|api_key|apikey|secret|"
    r"signature|sig|credential|credentials)=)[^&\s'\"<>]+", re.IGNORECASE)
MASK = "***"


def redact(text: str) -> str:
    """`text` without the credentials of any URL in it."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(r"\g<scheme>", text)
    return _SECRET_QUERY.sub(rf"\g<key>{MASK}", text)


def redact_value(value: Any) -> Any:
    """Strings redacted, containers walked; other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


STANDARD_RECORD_KEYS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """On a handler: the message, its arguments, `extra` fields and the traceback leave redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not raise in the caller: logging would have printed it
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        for key, value in vars(record).items():
            if key not in STANDARD_RECORD_KEYS and not key.startswith("_"):
                setattr(record, key, redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact_logs(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of `logger` (default: the root logger) that lacks it."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
