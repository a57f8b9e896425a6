"""Sinks benchmark: outbox write rate, opened -> delivered latency on loopback, and a receiver outage.

Targets (issue 12): the outbox takes >= 1,000 messages/s into SQLite; opened -> delivered p95 <= 1 s on
loopback; a receiver outage with 4 cameras producing events loses nothing.

    python scripts/bench_delivery.py                 # 60 s outage
    python scripts/bench_delivery.py --outage-s 600  # the issue's 10 minutes

The write rate is measured side by side with the same event rows written without messages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.camera.events import Event  # noqa: E402
from detector.config.camera import CameraConfig  # noqa: E402
from detector.config.sinks import SinkConfig  # noqa: E402
from detector.output.delivery import DeliveryPool  # noqa: E402
from detector.output.outbox import Messages, Outbox  # noqa: E402
from detector.output.store import EventStore  # noqa: E402
from testkit.receiver import Receiver  # noqa: E402

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def camera(n: int) -> CameraConfig:
    return CameraConfig.model_validate({"camera": {"id": f"cam-{n}", "timezone": "Asia/Shanghai"}})


def make_event(i: int, cam: int = 0) -> Event:
    return Event(id=f"cam-{cam}-{i}", camera_id=f"cam-{cam}", kind="garbage",
                 category={"code": "01-03", "name": "积存垃圾渣土"}, zone_id=None, first_seen=T0 + timedelta(seconds=i),
                 last_seen=T0 + timedelta(seconds=i + 30), confidence=0.7, bbox=[10, 20, 110, 220], track_id=i,
                 source={"uri": "rtsp://cam", "pts_s": float(i)}, model={"card": "streetwatch", "sha256": "ab" * 32})


def write_rate(folder: Path, n: int, per_frame: int) -> tuple[float, float]:
    """(rows/s without messages, messages/s with one sink), the same rows written the same way."""
    rates = []
    for with_sink in (False, True):
        store = EventStore(folder / f"rate-{with_sink}.sqlite")
        sinks = [SinkConfig(url="http://127.0.0.1:9/x")] if with_sink else []
        messages = Messages(sinks, camera(0), None)
        began = time.perf_counter()
        for start in range(0, n, per_frame):
            events = [make_event(i) for i in range(start, start + per_frame)]
            store.upsert(events, [m for e in events for m in messages.change(e, "opened")])
        rates.append(n / (time.perf_counter() - began))
        store.close()
    return rates[0], rates[1]


def latency(folder: Path, n: int, every_s: float) -> list[float]:
    """Seconds from an opened message's commit to its arrival at a loopback webhook, for `n` events."""
    receiver = Receiver().start()
    path = folder / "latency.sqlite"
    store = EventStore(path)
    sink = SinkConfig(url=receiver.url)
    Outbox(store).register([sink])
    pool = DeliveryPool(path, [sink]).start()
    messages = Messages([sink], camera(0), None, pool.wake)
    committed: dict[str, float] = {}
    try:
        for i in range(n):
            e = make_event(i)
            rows = messages.change(e, "opened")
            store.upsert([e], rows)
            committed[rows[0]["message_id"]] = time.time()
            pool.wake.set()
            time.sleep(every_s)
        pool.finish(30)
    finally:
        pool.close()
        store.close()
        receiver.stop()
    arrived = {r["json"]["message_id"]: r["at"] for r in receiver.requests if r["status"] == 200}
    return sorted(arrived[m] - t for m, t in committed.items() if m in arrived)


def outage(folder: Path, seconds: float, cameras: int, per_camera_s: float) -> dict[str, float]:
    """Four cameras open, update and close events while the receiver is down; then it comes back."""
    receiver = Receiver()
    path = folder / "outage.sqlite"
    store = EventStore(path)
    sink = SinkConfig(url=receiver.url, update_every_s=0)
    Outbox(store).register([sink])
    pool = DeliveryPool(path, [sink]).start()
    queues = [Messages([sink], camera(c), None, pool.wake) for c in range(cameras)]
    began, i = time.monotonic(), 0
    try:
        while time.monotonic() - began < seconds:
            for c, messages in enumerate(queues):
                e = make_event(i, c)
                store.upsert([e], messages.change(e, "opened") + messages.change(e, "updated"))
            i += 1
            time.sleep(per_camera_s)
        expected = {r["message_id"] for r in Outbox(store).messages()}
        receiver.start()
        up = time.monotonic()
        counts = pool.finish(max(120.0, seconds))
        drained_s = time.monotonic() - up
    finally:
        pool.close()
        store.close()
        receiver.stop()
    got = {r["json"]["message_id"] for r in receiver.requests if r["status"] == 200}
    accepted = sum(r["status"] == 200 for r in receiver.requests)
    return {"messages": len(expected), "lost": len(expected - got), "duplicates": accepted - len(got),
            "drain_s": drained_s, "pending_after": counts.get(sink.id, {}).get("pending", 0)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=5000, help="rows for the write rate (5000)")
    p.add_argument("--latency-events", type=int, default=200, help="events for the latency run (200)")
    p.add_argument("--outage-s", type=float, default=60.0, help="receiver outage in seconds (60; the issue: 600)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plain, with_messages = write_rate(folder, args.messages, per_frame=4)
        print(f"outbox write rate (SQLite, 4 events per transaction): {with_messages:,.0f} messages/s with one sink "
              f"vs {plain:,.0f} event rows/s without: {with_messages / plain:.2f}x  (target >= 1,000/s)")
        lat = latency(folder, args.latency_events, 0.05)
        if lat:
            p50, p95 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(0.95 * len(lat)))]
            print(f"opened -> delivered on loopback, {len(lat)} events at 20/s: p50 {p50 * 1000:.0f} ms, "
                  f"p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms  (target p95 <= 1 s)")
        result = outage(folder, args.outage_s, cameras=4, per_camera_s=1.0)
        print(f"receiver down {args.outage_s:g} s, 4 cameras: {result['messages']} messages, lost {result['lost']}, "
              f"duplicates {result['duplicates']}, drained in {result['drain_s']:.1f} s after it came back, "
              f"pending after: {result['pending_after']}  (target: none lost)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
