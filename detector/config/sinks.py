"""Sinks: where event messages are pushed (a city platform's webhook, an MQTT broker), and how.

A sink is a URL plus options; the scheme picks the transport. Secrets never sit in files: a webhook's
`Authorization` value and its HMAC key, and an MQTT password, are read from environment variables the
options name. `--sink URL` on the command line is a sink with default options.
"""

from __future__ import annotations

import hashlib
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from detector.config.base import Strict, format_validation_error
from detector.errors import ConfigError
from detector.redact import redact

SCHEMES = {"http": "webhook", "https": "webhook", "mqtt": "mqtt", "mqtts": "mqtt"}


class SinkConfig(Strict):
    """One receiver of event messages: `opened`, throttled `updated`, `closed`."""

    url: str = Field(description="http(s)://host/path (webhook, JSON POST) or mqtt(s)://[user[:pass]@]host[:port]"
                     "/prefix (topics prefix/camera_id/kind, QoS 1).")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                             description="Id of the sink in the outbox (default: derived from the URL).")
    authorization_env: str | None = Field(
        None, description="Webhook: environment variable holding the Authorization header value (e.g. 'Bearer …')."
    )
    hmac_secret_env: str | None = Field(
        None, description="Webhook: environment variable holding a key; each body is signed with HMAC-SHA256 in "
        "the X-Streetwatch-Signature header (sha256=<hex>).",
    )
    username_env: str | None = Field(None, description="MQTT: environment variable with the user name.")
    password_env: str | None = Field(None, description="MQTT: environment variable with the password.")
    update_every_s: float = Field(60.0, ge=0, description="At most one `updated` message per event this often.")
    snapshot: Literal["base64", "url", "none"] = Field(
        "base64", description="base64: the annotated JPEG in the message; url: a link under snapshot_url; none.")
    snapshot_url: str | None = Field(None, description="With snapshot: url, the base the snapshot path is joined to.")
    max_age_s: float = Field(86400.0, gt=0, description="A message not delivered this long is dead-lettered.")
    timeout_s: float = Field(10.0, gt=0, le=300, description="Per attempt: connect, send and acknowledgement.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"sink {redact_url(url)!r} has an unknown scheme {parts.scheme!r}; use http, https, "
                             "mqtt or mqtts")
        if not parts.hostname:
            raise ValueError(f"sink {redact_url(url)!r} has no host")
        try:
            parts.port  # noqa: B018 - a bad port raises here, not at the first delivery
        except ValueError:
            raise ValueError(f"sink {redact_url(url)!r} has a bad port") from None
        return url

    @model_validator(mode="after")
    def _check(self) -> SinkConfig:
        if self.snapshot == "url" and not self.snapshot_url:
            raise ValueError("snapshot: url needs snapshot_url (the base URL the review desk serves snapshots at)")
        webhook_only = [k for k in ("authorization_env", "hmac_secret_env") if getattr(self, k)]
        if self.transport == "mqtt" and webhook_only:
            raise ValueError(f"{', '.join(webhook_only)} apply to webhooks, not to {self.scheme} sinks")
        mqtt_only = [k for k in ("username_env", "password_env") if getattr(self, k)]
        if self.transport == "webhook" and mqtt_only:
            raise ValueError(f"{', '.join(mqtt_only)} apply to MQTT sinks; a webhook takes authorization_env")
        return self

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def transport(self) -> str:
        return SCHEMES[self.scheme]

    @property
    def id(self) -> str:
        """Stable across runs and free of credentials: the outbox rows of this sink carry it."""
        if self.name:
            return self.name
        safe = stored_url(self.url)
        host = urlsplit(self.url).hostname or "sink"
        return f"{self.transport}-{host}-{hashlib.sha1(safe.encode()).hexdigest()[:8]}"


def redact_url(url: str, *, drop_user: bool = False) -> str:
    """The URL without its password (and user): safe for logs, the database and pages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]  # as written: keeps IPv6 brackets and the port, valid or not
    user = "" if drop_user or not parts.username else f"{parts.username}:***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def stored_url(url: str) -> str:
    """What the database keeps of a sink URL: no user, no password, no secret query parameter."""
    return redact(redact_url(url, drop_user=True))


def merge_sinks(*groups: list[SinkConfig] | tuple[SinkConfig, ...]) -> list[SinkConfig]:
    """Sinks of several files in one list; the same id with two different settings is an error."""
    by_id: dict[str, SinkConfig] = {}
    for sink in (s for group in groups for s in group):
        known = by_id.setdefault(sink.id, sink)
        if known != sink:
            raise ConfigError(f"two different sinks share the id {sink.id!r} ({stored_url(known.url)} and "
                              f"{stored_url(sink.url)}, or other options)",
                              fix="give each sink its own name, or the same settings everywhere")
    return list(by_id.values())


def sinks_from_urls(urls: list[str], configured: list[SinkConfig] | tuple[SinkConfig, ...] = ()) -> list[SinkConfig]:
    """`--sink URL`s on top of a file's `sinks:`; a URL already configured keeps the file's options."""
    sinks = list(configured)
    known = {s.url for s in sinks}
    for url in urls:
        if url in known:
            continue
        try:
            sinks.append(SinkConfig(url=url))
        except ValidationError as e:
            raise ConfigError(f"--sink: {format_validation_error(e)}",
                              fix="e.g. --sink https://platform.example/events or --sink mqtt://broker:1883/streetwatch"
                              ) from None
        known.add(url)
    ids = [s.id for s in sinks]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"two sinks share the id {max(set(ids), key=ids.count)!r}", fix="give each a unique name")
    return sinks
