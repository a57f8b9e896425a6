"""Delivery: one worker per sink sends its outbox rows, in order per event, until they are acknowledged.

A webhook acknowledges with a 2xx; an MQTT broker with its PUBACK (QoS 1). Timeouts, refused
connections, 5xx, 408 and 429 are retried with capped exponential backoff and jitter; another 4xx says
the receiver will never take the message, so it is dead-lettered with the status at once. A message that
could not be delivered within the sink's `max_age_s` is dead-lettered too, and counted. Messages go
oldest first and a failure stops the pass, so a `closed` never overtakes its `opened`, and a receiver
that is down gets one probe per backoff rather than every new message.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from detector.config.sinks import SinkConfig, redact_url
from detector.output import messages
from detector.output.outbox import PENDING_PAGE, Outbox

log = logging.getLogger(__name__)
# A redirect, a rejected token, a wrong path or a proxy wanting credentials say nothing about the message:
# every message would get the same answer, so they are retried (and show in /healthz), never dead-lettered.
SINK_LEVEL = {401, 403, 404, 407, 408, 429}
BACKOFF_BASE_S, BACKOFF_CAP_S = 1.0, 30.0  # a receiver that returns is found within 30 s
STUCK_S = 5.0  # an attempt in flight for longer shows as `stuck` in /healthz (a slow or hanging receiver)
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class Retry(Exception):
    """The receiver may take it later (down, overloaded, timed out)."""


class Refused(Exception):
    """The receiver will never take it (a 4xx other than 408/429)."""


class Transport(Protocol):
    def send(self, body: bytes, row: dict[str, Any]) -> None: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...


class Webhook:
    """JSON POST; Authorization and an HMAC-SHA256 signature of the body from the environment.

    One attempt has one deadline, `timeout_s` from connecting to the status line: httpx's timeouts are per read,
    so a receiver that drips its answer a byte at a time would hold a sender for minutes. A timer shuts the
    attempt's socket down at the deadline (or at once on `abort()`, when the process stops). Only the status is
    read, never the body: a receiver answering with gigabytes costs nothing. No connection is kept alive, so
    every attempt has its own socket to cut.
    """

    def __init__(self, sink: SinkConfig) -> None:
        import httpx

        self.sink = sink
        self.client = httpx.Client(timeout=sink.timeout_s, follow_redirects=False,
                                   limits=httpx.Limits(max_keepalive_connections=0))
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._aborted = False
        self.headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "streetwatch"}
        if sink.authorization_env:
            self.headers["Authorization"] = _env(sink.authorization_env, sink)
        self.key = _env(sink.hmac_secret_env, sink).encode() if sink.hmac_secret_env else None

    def send(self, body: bytes, row: dict[str, Any]) -> None:
        import httpx

        headers = {**self.headers, "X-Streetwatch-Message-Id": row["message_id"]}
        if self.key:
            headers["X-Streetwatch-Signature"] = "sha256=" + hmac.new(self.key, body, hashlib.sha256).hexdigest()
        with self._lock:
            self._aborted, self._socket = False, None
        deadline = threading.Timer(self.sink.timeout_s, self.abort)
        deadline.daemon = True
        deadline.start()
        try:
            with self.client.stream("POST", self.sink.url, content=body, headers=headers,
                                    extensions={"trace": self._trace}) as response:
                code, phrase = response.status_code, response.reason_phrase  # the body is never read
        except httpx.HTTPError as e:
            if self._aborted or isinstance(e, httpx.TimeoutException):
                raise Retry(f"no answer within {self.sink.timeout_s:g} s (timeout_s)") from e
            raise Retry(f"{type(e).__name__}: {e}".strip()) from e
        finally:
            deadline.cancel()
            with self._lock:
                self._socket = None
        if 200 <= code < 300:
            return
        reason = f"HTTP {code} {phrase}".strip()
        if code < 400 or code in SINK_LEVEL or code >= 500:
            raise Retry(reason)  # the receiver, not this message: back off, lose nothing
        raise Refused(reason)

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: the attempt's socket, as soon as it is connected."""
        if name == "connection.connect_tcp.complete":
            with self._lock:
                self._socket = info["return_value"].get_extra_info("socket")
            if self._aborted:
                self.abort()

    def abort(self) -> None:
        """End the attempt in flight now (the deadline passed, or the process stops)."""
        with self._lock:
            self._aborted = True
            if self._socket is not None:
                with contextlib.suppress(OSError):  # closed already
                    self._socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.client.close()


class Mqtt:
    """QoS 1 publish to `{prefix}/{camera_id}/{kind}`; a message counts once the broker acknowledged it."""

    def __init__(self, sink: SinkConfig) -> None:
        import paho.mqtt.client as mqtt

        parts = urlsplit(sink.url)
        self.sink, self.prefix = sink, parts.path.strip("/") or "streetwatch"
        # one id per connection: a broker drops the older of two clients with the same id
        client_id = f"streetwatch-{sink.id}-{os.getpid()}-{random.getrandbits(32):08x}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        user = _env(sink.username_env, sink) if sink.username_env else unquote(parts.username or "") or None
        password = _env(sink.password_env, sink) if sink.password_env else unquote(parts.password or "") or None
        if user:
            self.client.username_pw_set(user, password)
        if parts.scheme == "mqtts":
            self.client.tls_set()
        self.client.reconnect_delay_set(1, 30)
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.client.connect_async(parts.hostname or "localhost", port)
        self.client.loop_start()

    def send(self, body: bytes, row: dict[str, Any]) -> None:
        kind = json.loads(row["body"])["event"]["kind"]
        if not self.client.is_connected():
            raise Retry(f"not connected to {redact_url(self.sink.url)}")
        info = self.client.publish(f"{self.prefix}/{row['camera_id']}/{kind}", body, qos=1)
        try:
            info.wait_for_publish(timeout=self.sink.timeout_s)
        except (RuntimeError, ValueError) as e:  # the connection went away while waiting
            raise Retry(str(e) or "publish failed") from e
        if not info.is_published():
            raise Retry(f"no PUBACK within {self.sink.timeout_s:g} s")

    def abort(self) -> None:
        """Nothing to cut: a publish waits at most `timeout_s` for its PUBACK."""

    def close(self) -> None:
        self.client.disconnect()  # while the loop still runs, so the DISCONNECT goes out
        self.client.loop_stop()


def _env(name: str | None, sink: SinkConfig) -> str:
    value = os.environ.get(name or "")
    if not value:
        from detector.errors import ConfigError

        raise ConfigError(f"sink {sink.id}: environment variable {name} is not set",
                          fix=f"export {name}=... before starting, or drop the option from the sink")
    return value


def transport_for(sink: SinkConfig) -> Transport:
    return Webhook(sink) if sink.transport == "webhook" else Mqtt(sink)


@dataclass
class DeliveryStats:
    """Counters of this process, and the outbox's pending count as of the last pass (for /metrics)."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    pending: int = 0
    latency_counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_S))  # cumulative
    latency_sum_s: float = 0.0
    last_error: str | None = None
    state: str = "starting"
    attempt_started: float | None = None  # time.time() of the attempt in flight, if any

    def observe(self, latency_s: float) -> None:
        """Stored to delivered, in Prometheus histogram buckets."""
        self.delivered += 1
        self.latency_sum_s += latency_s
        for i, bound in enumerate(LATENCY_BUCKETS_S):
            if latency_s <= bound:
                self.latency_counts[i] += 1

    def in_flight_s(self) -> float | None:
        started = self.attempt_started
        return None if started is None else max(0.0, time.time() - started)

    def as_dict(self) -> dict[str, Any]:
        in_flight = self.in_flight_s()
        stuck = in_flight is not None and in_flight > STUCK_S
        return {"state": "stuck" if stuck else self.state, "delivered": self.delivered, "retried": self.retried,
                "dead_lettered": self.dead, "pending": self.pending, "last_error": self.last_error,
                "in_flight_s": None if in_flight is None else round(in_flight, 1)}


class Deliverer:
    """Sends one sink's outbox rows; `run()` in a thread until `stop()`, or `drain()` until empty."""

    def __init__(self, outbox: Outbox, sink: SinkConfig, transport: Transport | None = None,
                 wake: threading.Event | None = None, cameras: list[str] | None = None) -> None:
        self.outbox, self.sink, self.cameras = outbox, sink, cameras
        self.transport = transport or transport_for(sink)
        self.wake = wake or threading.Event()
        self.stats = DeliveryStats()
        self._stop = threading.Event()
        self._failures, self._probe_at = 0, 0.0  # consecutive failed attempts, and when to try again

    def step(self) -> tuple[int, float | None]:
        """One pass over the pending rows, oldest first: (rows handled, seconds until the next probe if the
        receiver is failing). The first failure ends the pass: a receiver that is down is probed once per
        backoff with the oldest message, not flooded with every new one, and nothing overtakes it."""
        now = time.time()
        if now < self._probe_at:
            return 0, self._probe_at - now
        handled = 0
        rows = self.outbox.pending(self.sink.id, self.cameras)
        self.stats.pending = self.pending() if len(rows) == PENDING_PAGE else len(rows)  # fresh while it sends
        for row in rows:
            handled += 1
            if now - row["created_at"] > self.sink.max_age_s:
                self._dead(row, f"not delivered within max_age_s={self.sink.max_age_s:g} ({row['error']})")
            elif not self._attempt(row) or self._stop.is_set():
                break
        return handled, (self._probe_at - time.time()) if self._failures else None

    def _attempt(self, row: dict[str, Any]) -> bool:
        body = messages.for_sending(json.loads(row["body"]), self.sink)
        self.stats.attempt_started = time.time()
        try:
            try:
                self.transport.send(body, row)
            except (Retry, Refused):
                raise
            except Exception as e:  # a transport's surprise is the receiver's problem too: back off
                raise Retry(f"{type(e).__name__}: {e}") from e
            finally:
                self.stats.attempt_started = None
        except Retry as e:
            self._failures += 1
            delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (self._failures - 1)) * random.uniform(0.5, 1.0)
            self._probe_at = time.time() + delay
            self.outbox.retry(row["seq"], row["attempts"] + 1, self._probe_at, str(e))
            self.stats.retried += 1
            self._note("retrying", str(e))
            return False
        except Refused as e:
            self._dead(row, str(e))
            return True
        latency = time.time() - row["created_at"]
        self._failures = 0
        self.outbox.delivered(row["seq"], row["attempts"] + 1)
        self.stats.observe(latency)
        self._note("ok", None)
        return True

    def _dead(self, row: dict[str, Any], error: str) -> None:
        self.outbox.dead(row["seq"], row["attempts"] + 1, error)
        self.stats.dead += 1
        log.warning("sink %s: message %s (%s of event %s) dead-lettered: %s", self.sink.id, row["message_id"],
                    row["type"], row["event_id"], error)
        self._note("dead", error)

    def _note(self, result: str, error: str | None) -> None:
        if result != "dead":
            self.stats.state = "ok" if result == "ok" else "retrying"
        if error:
            self.stats.last_error = error

    def run(self, poll_s: float = 1.0) -> None:
        """Until `stop()`: deliver what is due, then sleep until woken, a retry is due, or `poll_s`."""
        while not self._stop.is_set():
            try:
                handled, next_due = self.step()
            except Exception as e:  # e.g. the database locked too long: the messages are safe, try again
                log.warning("sink %s: delivery pass failed, retrying: %s", self.sink.id, e)
                self.stats.state, self.stats.last_error = "error", str(e)
                handled, next_due = 0, poll_s
            if handled and not self._stop.is_set():
                continue
            try:
                self.stats.pending = self.pending()
            except Exception as e:  # a count is not worth a crash
                log.debug("sink %s: cannot count pending messages: %s", self.sink.id, e)
            self.wake.wait(min(poll_s, next_due) if next_due else poll_s)
            self.wake.clear()

    def drain(self, timeout_s: float) -> bool:
        """Deliver until nothing is pending or `timeout_s` passed; True when nothing is left pending."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            handled, next_due = self.step()
            if not self.pending():
                return True
            if not handled:
                time.sleep(max(0.0, min(next_due or 0.2, 0.5, deadline - time.monotonic())))
        return not self.pending()

    def pending(self) -> int:
        return self.outbox.pending_count(self.sink.id, self.cameras)

    def stop(self) -> None:
        """Stop after the attempt in flight, which ends now (its message is sent again next time)."""
        self._stop.set()
        self.wake.set()
        self.transport.abort()

    def close(self) -> None:
        self.transport.close()


class DeliveryPool:
    """A deliverer thread per sink, each on its own store connection, sending what `cameras` queued (all
    cameras when None); `finish()` waits, then stops them."""

    def __init__(self, target: str | Path, sinks: list[SinkConfig], wake: threading.Event | None = None,
                 cameras: list[str] | None = None) -> None:
        self.target, self.sinks, self.cameras = target, sinks, cameras
        self.wake = wake or threading.Event()
        self.deliverers: list[Deliverer] = []
        self._threads: list[threading.Thread] = []
        self._before: dict[str, dict[str, int]] = {}

    def start(self) -> DeliveryPool:
        self._before = self._add(self.sinks)
        return self

    def add(self, sinks: list[SinkConfig]) -> None:
        """Deliverers for sinks not sent to yet (a camera a pool process took has its own)."""
        known = {s.id for s in self.sinks}
        fresh = [s for s in sinks if s.id not in known]
        if fresh:
            self._before |= self._add(fresh)
            self.sinks = self.sinks + fresh

    def scope(self, cameras: list[str]) -> None:
        """Send what these cameras queued from now on (a pool process's cameras change as it runs)."""
        self.cameras = list(cameras)
        for d in self.deliverers:
            d.cameras = self.cameras
        self.wake.set()

    def _add(self, sinks: list[SinkConfig]) -> dict[str, dict[str, int]]:
        """Start one deliverer thread per sink; the outbox counts before them (for `finish()`)."""
        from detector.output.store import open_store

        added: list[Deliverer] = []
        try:
            for sink in sinks:
                transport = transport_for(sink)  # a missing secret is an error now, not at the first event
                added.append(Deliverer(Outbox(open_store(self.target)), sink, transport, self.wake, self.cameras))
            before = added[0].outbox.counts(self.cameras) if added else {}
        except BaseException:
            for d in added:
                d.close()
                d.outbox.store.close()
            raise
        for d in added:
            thread = threading.Thread(target=d.run, kwargs={"poll_s": 0.5}, name=f"deliver-{d.sink.id}", daemon=True)
            thread.start()
            self.deliverers.append(d)
            self._threads.append(thread)
        return before

    def finish(self, timeout_s: float) -> dict[str, dict[str, int]]:
        """Wait up to `timeout_s` for the outbox to empty, stop the threads; per sink, what this run
        delivered and dead-lettered, and what is still pending."""
        from detector.output.store import open_store

        if not self.deliverers:
            return {}
        deadline = time.monotonic() + timeout_s
        store = open_store(self.target)  # a connection of its own: the deliverers' are theirs alone
        try:
            outbox = Outbox(store)
            while time.monotonic() < deadline:
                self.wake.set()
                if not any(outbox.pending_count(s.id, self.cameras) for s in self.sinks):
                    break
                time.sleep(0.1)
            self._stop_threads()
            return self._since_start(outbox.counts(self.cameras))
        finally:
            store.close()
            self.close()

    def _since_start(self, now: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        out = {}
        for sink in self.sinks:
            after, before = now.get(sink.id, {}), self._before.get(sink.id, {})
            out[sink.id] = {"pending": after.get("pending", 0),
                            "delivered": after.get("delivered", 0) - before.get("delivered", 0),
                            "dead": after.get("dead", 0) - before.get("dead", 0)}
        return out

    def _stop_threads(self, budget_s: float = 20.0) -> None:
        for d in self.deliverers:
            d.stop()
        deadline = time.monotonic() + budget_s  # one budget for all: a hung receiver must not stall shutdown
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Stop; resources of a thread still inside a send are left to it (it is a daemon)."""
        self._stop_threads()
        alive = {t.name for t in self._threads if t.is_alive()}
        for d in self.deliverers:
            if f"deliver-{d.sink.id}" in alive:
                log.warning("sink %s: a send is still running at shutdown; its message is sent again next time",
                            d.sink.id)
                continue
            d.close()
            d.outbox.store.close()
        self.deliverers, self._threads = [], []


def undelivered(delivery: dict[str, dict[str, int]]) -> bool:
    """Something still pending, or dead-lettered by this run."""
    return any(c.get("pending") or c.get("dead") for c in delivery.values())


def delivery_lines(delivery: dict[str, dict[str, int]]) -> list[str]:
    """One summary line per sink: delivered, dead-lettered, and what is left for `streetwatch deliver`."""
    lines = []
    for sink_id, c in sorted(delivery.items()):
        left = f"; {c['pending']} left in the outbox (streetwatch deliver)" if c.get("pending") else ""
        dead = f", {c['dead']} dead-lettered" if c.get("dead") else ""
        lines.append(f"sink {sink_id}: {c.get('delivered', 0)} messages delivered{dead}{left}")
    return lines
