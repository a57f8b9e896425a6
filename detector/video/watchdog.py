"""The watchdog: it only restarts. A reader that stalls, hangs in a read, shows a frozen picture or
whose thread died gets a fresh connection; restarts that come too fast back off, as Frigate's does."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from detector.config.watch import Watchdog as WatchdogSettings
from detector.video.live import LiveReader, State

log = logging.getLogger(__name__)

BACKOFF_WINDOW_S = 300.0  # restarts of one reader within this long count as "too fast"
MAX_BACKOFF_S = 60.0


class Watchdog:
    """Restarts readers with no frame for `no_frame_s`, a frozen picture, or a dead thread."""

    def __init__(self, readers: dict[str, LiveReader] | Callable[[], dict[str, LiveReader]],
                 settings: WatchdogSettings, interval_s: float = 1.0) -> None:
        self.readers = readers if callable(readers) else (lambda: readers)
        self.settings = settings
        self.interval_s = interval_s
        self._recent: dict[str, list[float]] = {}  # name -> monotonic times of its recent restarts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def check(self) -> None:
        now = time.monotonic()
        for name, reader in list(self.readers().items()):
            reason = self._reason(reader, now)
            if reason is not None and self._may_restart(name, now):
                reader.restart(reason)

    def _reason(self, reader: LiveReader, now: float) -> str | None:
        """Why the reader needs a restart, or None."""
        stats = reader.stats
        if stats.state == State.STOPPED:
            return None
        if not reader.alive():
            return f"reader thread died ({stats.last_error or 'no error recorded'})"
        if stats.state == State.BACKOFF:
            return None
        since_frame = time.time() - stats.last_frame_at if stats.last_frame_at is not None else float("inf")
        if min(since_frame, now - stats.attempt_started) > self.settings.no_frame_s:
            return f"no frame for {self.settings.no_frame_s:g}s"
        if stats.frozen_since is not None and now - stats.frozen_since > self.settings.frozen_s:
            return f"picture frozen for {self.settings.frozen_s:g}s"
        return None

    def _may_restart(self, name: str, now: float) -> bool:
        """The first restart at once; the n-th within BACKOFF_WINDOW_S waits 2**(n-1) s after the last."""
        recent = [t for t in self._recent.get(name, []) if now - t < BACKOFF_WINDOW_S]
        if recent and now - recent[-1] < min(MAX_BACKOFF_S, 2.0 ** (len(recent) - 1)):
            self._recent[name] = recent
            return False
        self._recent[name] = [*recent, now]
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # the watchdog must outlive any one bad check
                log.exception("watchdog check failed")
