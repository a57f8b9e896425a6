"""A `streetwatch watch` worker as its own process, observed through HTTP and its SQLite file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from testkit.rtsp import REPO


def other_host_works() -> bool:
    """Whether a process can be given a host name of its own here (root, or CAP_SYS_ADMIN, and unshare)."""
    try:
        done = subprocess.run(["unshare", "--uts", "sh", "-c", "hostname streetwatch-probe"], capture_output=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class WorkerProcess:
    """`python -m detector.cli watch` as its own process, observed through HTTP and its SQLite file."""

    def __init__(self, config: Path, out: Path, port: int, log: Path, *, hostname: str | None = None) -> None:
        """`hostname`: run it as if on another machine (a UTS namespace of its own, see `other_host_works`)."""
        self.config, self.out, self.port, self.log, self.hostname = config, out, port, log, hostname
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "detector.cli", "--log-level", "INFO", "watch", "--config", str(self.config),
                   "--log-json"]
        if self.hostname:  # unshare execs sh, which execs python: one pid, so kill() reaches the worker
            command = ["unshare", "--uts", "sh", "-c", f'hostname {self.hostname} && exec "$@"', "sh", *command]
        with self.log.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_for(lambda: self.health() is not None, 120, "the worker's /healthz")

    def _get(self, path: str) -> tuple[int, bytes] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return None

    def health(self) -> dict[str, Any] | None:
        got = self._get("/healthz")
        return json.loads(got[1]) if got else None

    def metric(self, name: str, camera: str | None, label: str = "camera") -> float:
        """A value of /metrics: of one camera (or sink, with `label`), or unlabelled with `camera` None."""
        got = self._get("/metrics")
        assert got is not None and got[0] == 200
        wanted = f'{name}{{{label}="{camera}"}}' if camera is not None else name
        for line in got[1].decode().splitlines():
            if line.split(" ")[0] == wanted:
                return float(line.split()[-1])
        raise AssertionError(f"{wanted} not in /metrics")

    def events(self) -> list[dict[str, Any]]:
        return self._read("SELECT id, camera_id, status, first_seen, last_seen FROM events")

    def outbox(self) -> list[dict[str, Any]]:
        return self._read("SELECT message_id, type, status, attempts FROM outbox ORDER BY seq")

    def _read(self, query: str) -> list[dict[str, Any]]:
        """Rows of the worker's SQLite file, read-only; none while it does not exist or lacks the table."""
        path = self.out / "events.sqlite"
        if not path.exists():
            return []
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(query)]
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    def terminate(self) -> tuple[int, float]:
        assert self.process is not None
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        return code, time.monotonic() - began

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
