"""A patrol car's three passes down a composed street, through `streetwatch patrol`, judged against the truth.

There is no real dashcam clip with GPS here, so `testkit.driveby` renders one from real photos in
`../shared` (bags cut out of trashbags, bikes out of bicycles, a cyclist in motion, a walker) with a
GPX track of the drive: three passes, hours apart; the garbage is gone on the third. Then the real model
runs over it and each event is matched to the object it stands for (same kind, nearest, within 10 m):

    python scripts/demo_patrol.py --out out/demo-patrol            # 1920x1080 at 25 fps
    python scripts/demo_patrol.py --out /tmp/p --size 960x540 --video-fps 10

Targets (issue 13): exactly one event per object over the three passes, each garbage event `cleared` on
the third, median location error <= 5 m and worst <= 10 m, no event for the moving cyclist or walker,
and at 1920x1080 a drive processed at least as fast as real time. Writes DIR/report.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.apps.patrol import patrol  # noqa: E402
from detector.config.patrol import load_patrol  # noqa: E402
from detector.geo.track import read_track  # noqa: E402
from detector.model.compiled import for_runtime  # noqa: E402
from detector.model.weights import DEFAULT_CARD, load_card  # noqa: E402
from testkit.driveby import DEMO_CAMERA, Drive, compose, judge  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "out" / "demo-patrol")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT of the videos (1920x1080)")
    p.add_argument("--video-fps", type=int, default=25, help="frame rate of the composed videos (25)")
    p.add_argument("--fps", type=float, help="frames sampled per second (the patrol file's default, 3)")
    p.add_argument("--model", default=str(DEFAULT_CARD))
    p.add_argument("--runtime", default=None, choices=["auto", "openvino", "pytorch"])
    p.add_argument("--reuse", action="store_true", help="keep videos already composed in --out")
    args = p.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    media = args.out / "media"
    if args.reuse and (media / "truth.json").exists():
        truth = json.loads((media / "truth.json").read_text())
    else:
        truth = compose(media, args.shared, replace(DEMO_CAMERA, width=width, height=height), Drive(fps=args.video_fps))
    (args.out / "truth.json").write_text(json.dumps(truth, indent=1))
    out = args.out / "run"
    for name in ("events.sqlite", "events.sqlite-wal", "events.sqlite-shm"):
        (out / name).unlink(missing_ok=True)  # the demo starts from an empty store: three passes, one run
    config = load_patrol(media / "patrol.yaml")
    loaded = for_runtime(load_card(args.model), args.runtime)
    result = patrol(sorted(media.glob("pass-*.mp4")), read_track(media / "track.gpx"), config, loaded, out,
                    fps=args.fps)
    report = judge(result.events, truth)
    report["speed"] = {"video_s": round(result.video_s, 1), "wall_s": round(result.wall_s, 1),
                       "realtime_ratio": round(result.video_s / result.wall_s, 2), "size": args.size,
                       "stages_s": {k: round(v, 1) for k, v in result.stages.items()}}
    report["stats"] = vars(result.stats)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    _print(report, result.events)
    return 0


def _print(report: dict, events: list[dict]) -> None:
    for e in events:
        loc = e["location"]
        print(f"{e['kind']:<8} {loc['lat']:.6f},{loc['lon']:.6f} ±{loc['accuracy_m']:.0f} m  passes={e['passes']} "
              f"sightings={e['sightings']:<3} {e.get('resolution') or e['status']}  {e['snapshot']}")
    print()
    for o in report["objects"]:
        got = ", ".join(f"{ev['error_m']:.1f} m {ev['resolution'] or ev['status']}" for ev in o["events"]) or "MISSED"
        print(f"truth {o['kind']:<8} passes {o['passes']}: {len(o['events'])} event(s): {got}")
    for e in report["false_events"]:
        print(f"false event {e['kind']} at {e['lat']:.6f},{e['lon']:.6f}  ({e['id']})")
    s = report["speed"]
    print(f"one event per object: {report['one_event_per_object']}; garbage cleared on pass 3: "
          f"{report['garbage_cleared_on_pass_3']}; location error median {report['median_error_m']} m, worst "
          f"{report['worst_error_m']} m; {s['video_s']} s of {s['size']} video in {s['wall_s']} s "
          f"({s['realtime_ratio']}x real time)")


if __name__ == "__main__":
    sys.exit(main())
