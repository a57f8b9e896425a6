"""The review desk under a full store: first page and review round trip, SQLite and PostgreSQL side by side.

    python scripts/bench_review.py [--events 10000] [--rounds 30]

Fills a store with `--events` events made from a real scan of the parked-bike demo (their snapshots
real), serves it over HTTP (uvicorn, as `streetwatch serve` does) and times, from the client: the
first page of the list (`/`), the first API page (`/api/events`), a filtered page, a page deep in the
list (by cursor), the event page, and a review (`POST .../review`, stored with who and when).
Targets (issue 14): first page < 300 ms, review round trip < 100 ms.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from detector.apps.scan import scan  # noqa: E402
from detector.apps.serve.app import Desk, create_app  # noqa: E402
from detector.apps.serve.auth import Gate  # noqa: E402
from detector.config.camera import load_camera  # noqa: E402
from detector.model.weights import load_card  # noqa: E402
from detector.output.store import EventStore, open_store  # noqa: E402
from testkit import media  # noqa: E402
from testkit.desk import multiply, served  # noqa: E402


def real_events(root: Path, shared: Path) -> Path:
    video = media.still_video(root / "bikes.mp4", [(media.bike_scene(shared).image, 90.0)])
    out = root / "out"
    scan([video], load_camera(REPO / "zones" / "demo-bikes.yaml"), load_card(REPO / "detector/cards/coco.yaml"),
         out, fps=1.0)
    return out


def fill(target: str | Path, source: Path, count: int) -> None:
    """The real events copied into `target`, then `count` made from them."""
    src, dst = EventStore(source / "events.sqlite"), open_store(target)
    from detector.camera.resume import event_from_row

    dst.upsert([event_from_row(r) for r in src.events()])
    multiply(dst, count, geo=(52.37, 4.89))
    src.close()
    dst.close()


def timed(call, rounds: int) -> dict[str, float]:
    call()  # warm: templates compiled, connection open
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text[:200]
    times.sort()
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1)}


def measure(url: str, rounds: int) -> dict[str, dict[str, float]]:
    with httpx.Client(base_url=url) as c:
        page = c.get("/")
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        first = c.get("/api/events").json()
        deep = first["next"]
        for _ in range(20):  # 20 pages in
            deep = c.get("/api/events", params={"cursor": deep}).json()["next"]
        ids = [e["id"] for e in first["events"]]
        n = iter(range(10**6))
        return {
            "list page /": timed(lambda: c.get("/"), rounds),
            "api first page": timed(lambda: c.get("/api/events"), rounds),
            "api filtered (to review)": timed(lambda: c.get("/api/events", params={"review": "none"}), rounds),
            "api page 21 (cursor)": timed(lambda: c.get("/api/events", params={"cursor": deep}), rounds),
            "event page": timed(lambda: c.get(f"/events/{ids[3]}"), rounds),
            "review round trip": timed(lambda: c.post(f"/api/events/{ids[next(n) % len(ids)]}/review",
                                                      json={"verdict": "confirmed"},
                                                      headers={"X-CSRF-Token": csrf}), rounds),
        }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--no-postgres", action="store_true")
    args = p.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        source = real_events(root, args.shared)
        targets: dict[str, str | Path] = {"sqlite": root / "bench.sqlite"}
        if not args.no_postgres:
            from testkit.pg import postgres_server

            targets["postgresql"] = stack.enter_context(postgres_server())
        for name, target in targets.items():
            fill(target, source, args.events)
            with served(create_app(Desk(target=target, out_dir=source, gate=Gate(None)))) as url:
                results[name] = measure(url, args.rounds)
    print(f"{args.events + 2} events; client-side times over HTTP on this machine ({args.rounds} rounds)")
    print(f"{'':28}" + "".join(f"{name + ' median/p95 ms':>28}" for name in results))
    for what in next(iter(results.values())):
        print(f"{what:28}" + "".join(f"{r[what]['median_ms']:>18.1f} / {r[what]['p95_ms']:<7.1f}"
                                     for r in results.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
