"""Real receivers for the sink tests and benchmarks: an HTTP server that can fail on purpose, and a
Mosquitto broker (Debian's `mosquitto`) on a free port that can be killed and restarted."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testkit import free_port


class Receiver:
    """A webhook receiver on 127.0.0.1:`port`; `answer(n)` decides the status of the n-th request (from 0).

    Every request is kept (headers, parsed body, arrival time); `start()`/`stop()` bring it up and down on
    the same port, so a test can keep it down for the first seconds of a run. Hostile answers: `drip_s` sends the
    status line one byte every `drip_s` seconds; `body_bytes` follows a 200 with that many bytes of body.
    """

    def __init__(self, port: int | None = None, answer: Callable[[int], int] | None = None,
                 delay_s: float = 0.0, drip_s: float = 0.0, body_bytes: int = 0) -> None:
        self.port = port or free_port()
        self.answer = answer or (lambda n: 200)
        self.delay_s, self.drip_s, self.body_bytes = delay_s, drip_s, body_bytes
        self.sent_body = 0  # bytes of body a client took before it hung up
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner._lock:
                    n = len(owner.requests)
                    status = owner.answer(n)
                    owner.requests.append({"headers": dict(self.headers), "raw": body, "json": json.loads(body),
                                           "status": status, "at": time.time(), "path": self.path})
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                try:
                    if owner.drip_s:
                        for ch in f"HTTP/1.1 {status} OK\r\nContent-Length: 0\r\n\r\n".encode():
                            self.wfile.write(bytes([ch]))
                            self.wfile.flush()
                            time.sleep(owner.drip_s)
                        return
                    self.send_response(status)
                    self.send_header("Content-Length", str(owner.body_bytes))
                    self.end_headers()
                    chunk = b"\0" * (1 << 20)
                    for _ in range(owner.body_bytes >> 20):
                        self.wfile.write(chunk)
                        owner.sent_body += len(chunk)
                except OSError:  # the client hung up (as it should on a hostile answer)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[dict[str, Any]]:
        """Bodies of the requests answered 2xx, in arrival order."""
        with self._lock:
            return [r["json"] for r in self.requests if 200 <= r["status"] < 300]


class Broker:
    """Mosquitto on a free port; stop() and start() again for an outage. Sessions persist across restarts
    (as on a production broker), so a subscriber's QoS 1 queue survives the outage."""

    def __init__(self, folder: Path) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed: run scripts/install-system-deps.sh")
        self.exe, self.port = exe, free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"persistence_location {folder}/\nautosave_interval 1\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}/city"

    def start(self) -> Broker:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class Subscriber:
    """A paho client subscribed to `topic` at QoS 1, keeping every message it gets."""

    def __init__(self, port: int, topic: str = "#") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}", clean_session=False)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, json.loads(m.payload)))
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
