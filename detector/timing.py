"""Seconds spent per stage of a run, for run summaries, `/metrics` and the benchmarks."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar


class Stopwatch:
    """Adds up wall seconds per named stage (decode, gate, model, pipeline, store, snapshots)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)


T = TypeVar("T")


def timed(items: Iterable[T], watch: Stopwatch, stage: str) -> Iterator[T]:
    """The items of an iterator, the time spent producing each (decoding a frame) added to `stage`."""
    iterator = iter(items)
    while True:
        start = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            return
        finally:
            watch.add(stage, time.perf_counter() - start)
        yield item
