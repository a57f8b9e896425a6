"""Decode ahead: a thread fills a small queue while the caller runs the model (PyAV and torch both
release the GIL, so decoding and inference overlap on two cores)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetch(frames: Iterable[T], size: int) -> Iterator[T]:
    """Decode in a thread while the caller infers (PyAV and torch both release the GIL)."""
    buffer: queue.Queue[T | BaseException | None] = queue.Queue(maxsize=size)
    stop = threading.Event()

    def work() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        buffer.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(None)
        except BaseException as e:  # handed to the consumer, raised there
            buffer.put(e)

    thread = threading.Thread(target=work, name="decode", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
