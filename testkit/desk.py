"""The review desk on a real HTTP port in a thread (uvicorn), and a store filled from real events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from detector.camera.resume import event_from_row
from detector.output.store import EventStore


@contextmanager
def served(app: Any) -> Iterator[str]:
    """`app` served by uvicorn on 127.0.0.1 (a free port), as `watch` serves the desk; yields its base URL."""
    from detector.apps.serve.run import AppServer

    server = AppServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def multiply(store: EventStore, count: int, *, geo: tuple[float, float] | None = None) -> list[str]:
    """`count` events made from the store's real ones (same snapshots, later times, own ids); with `geo`,
    every other one gets a location near (lat, lon), as a patrol's would. Returns the new ids."""
    real = [event_from_row(r) for r in store.events()]
    made = []
    for n in range(count):
        base = real[n % len(real)]
        later = timedelta(minutes=n + 1)
        event = replace(base, id=f"{base.id}-copy{n:05d}", first_seen=base.first_seen + later,
                        last_seen=base.last_seen + later)
        if geo and n % 2 == 0:
            event.locate({"lat": geo[0] + 0.0001 * (n % 20), "lon": geo[1] + 0.0001 * (n // 20),
                          "accuracy_m": 2.0, "method": "pinhole"}, None, sightings=6, passes=1)
        made.append(event)
    for start in range(0, len(made), 500):
        store.upsert(made[start:start + 500])
    return [e.id for e in made]
