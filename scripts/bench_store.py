"""Event write rate of store implementations, side by side, on an SQLite file and on PostgreSQL.

    python scripts/bench_store.py [--frames 2000] [--runs 5] [--run-events 300] [--reps 5]
                                  [--impl NAME=SPEC ...] [--no-postgres] [--json]

SPEC is a module (`detector.output.store`) or `REV:PATH`, a store module as committed at git revision
REV (`900c317:detector/output/store.py`), loaded into a temporary module; each must have `open_store`.
Without --impl: the hand-written store (sqlite3 and psycopg, as of 900c317, the last commit before the
store moved to SQLAlchemy Core) against the current one; the first --impl is the base of the ratios.

The workload is the pipeline's: `--frames` frames of one camera, each one transaction (`upsert`) with
the 1..8 events changed in that frame (events open, move, close and new ones open, as `StoreRecorder.flush`
writes them), then `--runs` re-scan commits (`commit_run`) of `--run-events` events each, alternating
two rule sets so that each commit supersedes the previous run. Every repetition starts from an empty
database (a new SQLite file; a new PostgreSQL database on one server from `testkit.pg`), opening it
(schema creation) is not timed, the implementations take turns within a repetition, and the figure
reported is the median over repetitions. After each repetition the implementations must have written
the same rows. SQLite runs as the store configures it (WAL, synchronous=NORMAL); the PostgreSQL server
runs with fsync=off, so both figures are CPU and round-trip bound, not disk bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.camera.events import Event, event_id  # noqa: E402
from detector.detections import Frame  # noqa: E402

START = datetime.fromisoformat("2026-11-20T10:00:00+01:00")
MODEL = {"card": "bench", "sha256": "0" * 64}


def load_impl(spec: str) -> ModuleType:
    if ":" not in spec:
        return importlib.import_module(spec)
    rev, path = spec.split(":", 1)
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, check=True, capture_output=True, text=True)
    module_file = Path(tempfile.mkdtemp(prefix="bench-store-")) / "store_at_rev.py"
    module_file.write_text(source.stdout)
    loader = importlib.util.spec_from_file_location(f"bench_store_{rev}", module_file)
    assert loader and loader.loader
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def new_event(rng: random.Random, camera: str, t: datetime, track: int) -> Event:
    kind = rng.choice(["bike", "garbage", "vending"])
    uri = f"rtsp://cam/{camera}"
    return Event(id=event_id(camera, kind, t, uri, track), camera_id=camera, kind=kind,
                 category={"code": "05-06", "name": "非机动车乱停放"}, zone_id=rng.choice([None, "bay"]),
                 first_seen=t, last_seen=t, confidence=rng.uniform(0.3, 0.9),
                 bbox=[rng.uniform(0, 1000) for _ in range(4)], track_id=track,
                 source={"uri": uri, "pts_s": 0.0}, model=MODEL,
                 snapshot=f"snapshots/{track}.jpg", clean_frame=f"snapshots/{track}-clean.jpg",
                 crop=f"snapshots/{track}-crop.jpg")


def frames(n: int, seed: int = 1) -> list[list[Event]]:
    """Per frame the events changed in it (copies, as they are at that frame): 1..8 of them."""
    rng = random.Random(seed)
    open_: list[Event] = []
    track = 0
    out: list[list[Event]] = []
    for i in range(n):
        t = START + timedelta(seconds=i * 0.5)
        k = rng.randint(1, 8)
        while len(open_) < k:
            track += 1
            open_.append(new_event(rng, "cam-1", t, track))
        changed = rng.sample(open_, k)
        for e in changed:
            seen = Frame(image=None, pts_s=i * 0.5, time=t, source_uri=e.source["uri"], index=i)
            e.seen(t, seen, min(0.99, e.confidence + rng.uniform(0, 0.01)), e.bbox)
            e.let_go()
            if rng.random() < 0.05:
                e.close()
                open_.remove(e)
        out.append([dataclasses.replace(e) for e in changed])
    return out


def rescan_runs(runs: int, per_run: int) -> list[tuple[dict[str, Any], list[Event], list[str]]]:
    rng = random.Random(2)
    out = []
    for r in range(runs):
        rules = f"rules-{r % 2}"
        events = [new_event(rng, "cam-r", START + timedelta(seconds=7 * i + (r % 2)), i) for i in range(per_run)]
        for e in events:
            e.close()
        run = {"id": f"cam-r-{rules}", "camera_id": "cam-r", "model_card": "bench", "weights_sha256": "0" * 64,
               "rules_sha256": rules, "params": "{}", "files_digest": f"d{r}",
               "finished_at": f"2026-11-21T00:00:{r:02d}"}
        out.append((run, events, [f"/archive/cam-r/{n}.mp4" for n in range(24)]))
    return out


def manifest(store: Any) -> None:
    """The 24 files of the re-scanned camera, as phase 1 leaves them (not timed)."""
    for n in range(24):
        store.record_file({"path": f"/archive/cam-r/{n}.mp4", "detect_key": "k", "camera_id": "cam-r", "size": 1,
                           "mtime": 1.5, "fingerprint": "f", "model_card": "bench", "weights_sha256": "0" * 64,
                           "rules_sha256": None, "status": "detected", "start_time": START.isoformat(),
                           "video_s": 600.0, "problem": None, "detections": b"\0" * 64,
                           "scanned_at": START.isoformat()})


def one(module: ModuleType, target: str, work: list[list[Event]], runs: list) -> dict[str, Any]:
    store = module.open_store(target)
    try:
        manifest(store)
        t0 = time.perf_counter()
        for changed in work:
            store.upsert(changed)
        t1 = time.perf_counter()
        for run, events, paths in runs:
            store.commit_run(run, events, paths, "k")
        t2 = time.perf_counter()
        state = (store.events(), store.scan_runs(), store.scan_events(), store.scan_files("k"))
    finally:
        store.close()
    return {"upsert_s": t1 - t0, "commit_s": t2 - t1, "state": json.dumps(state, sort_keys=True, default=str)}


def pg_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--run-events", type=int, default=300)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--impl", action="append", metavar="NAME=SPEC")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    specs = args.impl or ["hand-written=900c317:detector/output/store.py", "sqlalchemy=detector.output.store"]
    impls = {name: load_impl(spec) for name, spec in (s.split("=", 1) for s in specs)}
    work, runs = frames(args.frames), rescan_runs(args.runs, args.run_events)
    n_upserted, n_committed = sum(map(len, work)), sum(len(e) for _, e, _ in runs)

    from testkit import pg

    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp, (nullcontext() if args.no_postgres else pg.postgres_server()) as server:
        for rep in range(args.reps):
            for db in ["sqlite"] + ([] if server is None else ["postgresql"]):
                states = {}
                for n, name in enumerate(impls):
                    target = (str(Path(tmp) / f"{name}-{rep}.sqlite") if db == "sqlite"
                              else pg_database(server, f"bench_{n}_{rep}"))
                    r = one(impls[name], target, work, runs)
                    states[name] = r.pop("state")
                    results.setdefault((name, db), []).append(r)
                if len(set(states.values())) != 1:
                    print(f"the implementations wrote different rows on {db}", file=sys.stderr)
                    return 1

    table = []
    for (name, db), reps in results.items():
        upsert_s = statistics.median(r["upsert_s"] for r in reps)
        commit_s = statistics.median(r["commit_s"] for r in reps)
        table.append({"impl": name, "db": db, "frames_per_s": args.frames / upsert_s,
                      "events_per_s": n_upserted / upsert_s, "commit_events_per_s": n_committed / commit_s,
                      "upsert_s": [round(r["upsert_s"], 4) for r in reps]})
    if args.json:
        print(json.dumps({"frames": args.frames, "events": n_upserted, "commit_events": n_committed,
                          "reps": args.reps, "results": table}, indent=2))
        return 0
    print(f"{args.frames} frames, {n_upserted} event upserts; {args.runs} commit_run x {args.run_events} events; "
          f"median of {args.reps} repetitions")
    print(f"{'implementation':<16}{'database':<12}{'frames/s':>10}{'events/s':>11}{'commit events/s':>17}")
    for row in table:
        print(f"{row['impl']:<16}{row['db']:<12}{row['frames_per_s']:>10.0f}{row['events_per_s']:>11.0f}"
              f"{row['commit_events_per_s']:>17.0f}")
    first = next(iter(impls))
    for row in table:
        if row["impl"] != first:
            base = next(r for r in table if r["impl"] == first and r["db"] == row["db"])
            print(f"{row['impl']} / {first} on {row['db']}: upsert {row['events_per_s'] / base['events_per_s']:.2f}x, "
                  f"commit_run {row['commit_events_per_s'] / base['commit_events_per_s']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
