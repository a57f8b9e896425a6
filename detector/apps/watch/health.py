"""Observability of a watch process: `/healthz` (JSON per camera), `/metrics` (Prometheus) and JSON logs."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from detector.output.delivery import LATENCY_BUCKETS_S, DeliveryStats
from detector.redact import STANDARD_RECORD_KEYS, redact_value
from detector.video.live import LiveReader, State


def camera_health(reader: LiveReader) -> dict[str, Any]:
    """One camera's health as /healthz shows it (every string redacted: errors repeat URLs)."""
    s = reader.stats
    age = None if s.last_frame_at is None else round(time.time() - s.last_frame_at, 3)
    health = {
        "state": s.state.value,
        "source": reader.uri,
        "last_frame_age_s": age,
        "fps": round(s.fps, 3),
        "frames": s.frames,
        "reconnects": s.reconnects,
        "connect_s": s.connect_s,
        "errors": s.errors,
        "watchdog_restarts": s.watchdog_restarts,
        "reader_deaths": s.deaths,
        "rejected": dict(s.rejected),
        "keyframes_only": s.keyframes_only,
        "last_error": s.last_error,
        "last_frame_unix": s.last_frame_at,
    }
    return redact_value(health)


class ReaderCollector:
    """Reads the readers' counters at scrape time, so the hot path only bumps plain integers."""

    def __init__(self, readers: Callable[[], dict[str, LiveReader]], extra: Callable[[], dict[str, Any]]):
        self.readers = readers
        self.extra = extra

    def collect(self) -> Iterator[Any]:
        readers = self.readers()
        frames = CounterMetricFamily("streetwatch_frames", "Sampled frames handed to detection", labels=["camera"])
        reconnects = CounterMetricFamily("streetwatch_reconnects", "Streams that came back after being lost",
                                         labels=["camera"])
        errors = CounterMetricFamily("streetwatch_source_errors", "Failed opens and reads", labels=["camera"])
        restarts = CounterMetricFamily("streetwatch_watchdog_restarts", "Sources restarted by the watchdog",
                                       labels=["camera"])
        deaths = CounterMetricFamily("streetwatch_reader_deaths",
                                     "Reader threads that died of an unexpected error and were restarted",
                                     labels=["camera"])
        rejected = CounterMetricFamily("streetwatch_frames_rejected", "Frames not given to the model",
                                       labels=["camera", "reason"])
        up = GaugeMetricFamily("streetwatch_camera_up", "1 while the camera streams", labels=["camera"])
        age = GaugeMetricFamily("streetwatch_last_frame_age_seconds", "Seconds since the last frame",
                                labels=["camera"])
        fps = GaugeMetricFamily("streetwatch_camera_fps", "Sampled frames per second", labels=["camera"])
        for cam, reader in readers.items():
            s = reader.stats
            frames.add_metric([cam], s.frames)
            reconnects.add_metric([cam], s.reconnects)
            errors.add_metric([cam], s.errors)
            restarts.add_metric([cam], s.watchdog_restarts)
            deaths.add_metric([cam], s.deaths)
            for reason, n in s.rejected.items():
                rejected.add_metric([cam, reason], n)
            up.add_metric([cam], 1.0 if s.state == State.STREAMING else 0.0)
            age.add_metric([cam], time.time() - s.last_frame_at if s.last_frame_at else float("nan"))
            fps.add_metric([cam], s.fps)
        yield from (frames, reconnects, errors, restarts, deaths, rejected, up, age, fps)
        for name, by_camera in self.extra().items():
            if isinstance(by_camera, int):  # a count of the whole process (reloads)
                yield CounterMetricFamily(f"streetwatch_{name}", name.replace("_", " "), value=by_camera)
                continue
            family = CounterMetricFamily(f"streetwatch_{name}", name.replace("_", " "), labels=["camera"])
            for cam, n in by_camera.items():
                family.add_metric([cam], n)
            yield family


class SinkCollector:
    """Per sink: messages delivered, retried, dead-lettered, pending, and stored-to-delivered latency."""

    def __init__(self, sinks: Callable[[], dict[str, DeliveryStats]]) -> None:
        self.sinks = sinks

    def collect(self) -> Iterator[Any]:
        labels = ["sink"]
        delivered = CounterMetricFamily("streetwatch_sink_delivered", "Messages a sink acknowledged", labels=labels)
        retried = CounterMetricFamily("streetwatch_sink_failed", "Attempts that failed and will be retried",
                                      labels=labels)
        dead = CounterMetricFamily("streetwatch_sink_dead_lettered", "Messages given up on", labels=labels)
        pending = GaugeMetricFamily("streetwatch_sink_pending", "Messages waiting in the outbox", labels=labels)
        in_flight = GaugeMetricFamily("streetwatch_sink_in_flight_seconds",
                                      "Age of the delivery attempt in flight (0: none); a receiver that hangs shows "
                                      "here", labels=labels)
        latency = HistogramMetricFamily("streetwatch_sink_delivery_seconds",
                                        "Seconds from the event change being stored to its acknowledgement",
                                        labels=labels)
        for sink, s in self.sinks().items():
            delivered.add_metric([sink], s.delivered)
            retried.add_metric([sink], s.retried)
            dead.add_metric([sink], s.dead)
            pending.add_metric([sink], s.pending)
            in_flight.add_metric([sink], s.in_flight_s() or 0.0)
            buckets = [(str(b), c) for b, c in zip(LATENCY_BUCKETS_S, s.latency_counts, strict=True)]
            latency.add_metric([sink], [*buckets, ("+Inf", s.delivered)], s.latency_sum_s)
        yield from (delivered, retried, dead, pending, in_flight, latency)


class PoolCollector:
    """A pool process's share and capacity, and each camera it holds with why (taken free, taken over, ...)."""

    def __init__(self, pool: Callable[[], dict[str, Any] | None]) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Any]:
        status = self.pool()
        if status is None:
            return
        held = GaugeMetricFamily("streetwatch_pool_camera_held", "1 per camera this process holds, with why",
                                 labels=["camera", "reason"])
        for camera, why in status["cameras"].items():
            held.add_metric([camera, why], 1.0)
        yield held
        yield GaugeMetricFamily("streetwatch_pool_cameras", "Cameras this process holds", value=len(status["cameras"]))
        yield GaugeMetricFamily("streetwatch_pool_share", "This process's share of the pool's cameras",
                                value=status["share"])
        yield GaugeMetricFamily("streetwatch_pool_capacity", "The most cameras this process will hold now",
                                value=status["capacity"])


class Health:
    """What /healthz and /metrics report; it only reads state, so it never slows the cameras."""

    def __init__(self, readers: Callable[[], dict[str, LiveReader]], extra: Callable[[], dict[str, Any]],
                 sinks: Callable[[], dict[str, DeliveryStats]] = dict, *,
                 pool: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ReaderCollector(readers, extra))
        self.registry.register(SinkCollector(sinks))
        self.registry.register(PoolCollector(pool))
        self.sinks, self.pool = sinks, pool
        self.inference_seconds = Histogram(
            "streetwatch_inference_seconds", "Seconds per inference batch", registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
        )
        self.readers = readers

    def metrics(self) -> bytes:
        return generate_latest(self.registry)

    def healthz(self) -> tuple[bytes, str, int]:
        cameras = {cam: camera_health(r) for cam, r in self.readers().items()}
        streaming = sum(c["state"] == "streaming" for c in cameras.values())
        status = "ok" if streaming == len(cameras) else ("degraded" if streaming else "down")
        sinks = {sink: stats.as_dict() for sink, stats in self.sinks().items()}
        if status == "ok" and any(s["state"] in ("retrying", "error", "stuck") for s in sinks.values()):
            status = "degraded"  # the cameras run; a receiver is not taking messages (they wait in the outbox)
        pool = self.pool()
        waiting = pool is not None and not cameras  # a pool member with nothing to hold (yet) is healthy
        if waiting:
            status = "ok"
        body = json.dumps({"status": status, "cameras": cameras, "sinks": redact_value(sinks),
                           **({"pool": pool} if pool is not None else {})}, indent=1).encode()
        return body, "application/json", 200 if streaming or waiting else 503


class HealthServer(Health):
    """/healthz and /metrics on a small HTTP server in its own thread."""

    def __init__(self, host: str, port: int, readers: Callable[[], dict[str, LiveReader]],
                 extra: Callable[[], dict[str, Any]],
                 sinks: Callable[[], dict[str, DeliveryStats]] = dict, *,
                 pool: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        super().__init__(readers, extra, sinks, pool=pool)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/healthz":
                    body, ctype, code = server.healthz()
                elif self.path.split("?")[0] == "/metrics":
                    body, ctype, code = server.metrics(), CONTENT_TYPE_LATEST, 200
                else:
                    body, ctype, code = b"not found: try /healthz or /metrics\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # scrapes are not news
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra={...}` fields."""


    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_RECORD_KEYS and not key.startswith("_"):
                out[key] = value
        if record.exc_info or record.exc_text:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(out, ensure_ascii=False, default=str)

    converter = time.gmtime  # type: ignore[assignment]  # UTC times in every line
