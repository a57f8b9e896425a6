"""A real RTSP server for tests: scripts/rtsp_server.py (GStreamer) as its own process.

Debian's python3-gi binds to /usr/bin/python3, not the interpreter running the tests, so the server
runs under /usr/bin/python3; .ci/run installs gir1.2-gst-rtsp-server-1.0 and the GStreamer plugins.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

from testkit import REPO, free_port

SYSTEM_PYTHON = os.environ.get("STREETWATCH_GI_PYTHON", "/usr/bin/python3")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def write_frames(folder: Path, image: np.ndarray, count: int = 7, noise: float = 4.0, seed: int = 0) -> Path:
    """`count` JPEGs of one still scene, each with its own sensor noise, so the stream is never frozen."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        noisy = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"frame-{i:02d}.jpg"), noisy, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


class RtspServer:
    """`start()`/`kill()` the server process on a fixed port, so a worker can lose and regain it."""

    def __init__(self, mounts: dict[str, Path], port: int | None = None, fps: int = 5, log: Path | None = None):
        self.mounts = mounts
        self.port = port or free_port()
        self.fps = fps
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def start(self, timeout: float = 20.0) -> float:
        """Start and wait until it accepts connections; returns that moment (time.time())."""
        command = [SYSTEM_PYTHON, str(REPO / "scripts" / "rtsp_server.py"), "--port", str(self.port),
                   "--fps", str(self.fps)]
        for name, folder in self.mounts.items():
            command += ["--mount", f"{name}={folder}"]
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"RTSP server exited with {self.process.returncode}; see {self.log}")
            if port_open(self.port):
                return time.time()
            time.sleep(0.05)
        raise RuntimeError(f"RTSP server did not listen on {self.port} within {timeout}s")

    def kill(self) -> None:
        """SIGKILL: the server vanishes as a crashed or unplugged camera does, with no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
