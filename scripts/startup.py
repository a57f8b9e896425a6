"""Start-up and memory of the default scan, as a user runs it: `streetwatch scan CLIP --camera zones/example.yaml`.

    python scripts/startup.py [--runs 5] [--clip out/bench-clips/vtest-1080p25-h264-60s.mp4]

With the default card compiled and cached beforehand (`streetwatch models export`), each run is its own process:
the time from launching it to its first decoded frame (the scan logs that moment), its whole wall time, its
peak RSS (from the kernel, as `/usr/bin/time` reports it), and whether torch was imported. Targets (issue
"lean and fast by default"): first frame <= 1.5 s, peak RSS <= 600 MB. Prints medians and every run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

PROBE = """
import resource, sys
sys.argv = ["streetwatch", *sys.argv[1:]]
from detector.cli import main
code = main()
print("STARTUP", int("torch" in sys.modules), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def one_run(clip: Path, out: Path) -> dict[str, float]:
    command = [sys.executable, "-c", PROBE, "--log-level", "DEBUG", "scan", str(clip), "--camera",
               str(REPO / "zones" / "example.yaml"), "--out", str(out), "--no-progress"]
    began = time.time()
    env = {**os.environ, "STREETWATCH_RUNTIME": "auto"}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    wall = time.time() - began
    if done.returncode != 0:
        raise SystemExit(f"scan failed ({done.returncode}): {done.stderr[-2000:]}")
    first = float(re.search(r"first frame decoded at unix ([0-9.]+)", done.stderr).group(1))
    torch, rss_kb = re.search(r"STARTUP (\d) (\d+)", done.stderr).groups()
    return {"first_frame_s": round(first - began, 3), "wall_s": round(wall, 2),
            "peak_rss_mb": round(int(rss_kb) / 1024), "torch": bool(int(torch))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clip", type=Path, default=REPO / "out" / "bench-clips" / "vtest-1080p25-h264-60s.mp4")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--json", type=Path, help="also write the runs here")
    args = parser.parse_args()
    if not args.clip.exists():
        from make_clips import make_clip

        make_clip(args.shared / "videos" / "vtest.avi", args.clip, seconds=60)
    subprocess.run([sys.executable, "-m", "detector.cli", "models", "export"], cwd=REPO, check=True,
                   capture_output=True)  # compiled and cached: start-up is measured from the cache
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_run(args.clip, Path(tmp) / f"out{i}") for i in range(args.runs)]
    for i, r in enumerate(runs):
        print(f"run {i + 1}: first frame {r['first_frame_s']:.2f} s, wall {r['wall_s']:.1f} s, "
              f"peak RSS {r['peak_rss_mb']} MB, torch imported: {r['torch']}")
    summary = {k: statistics.median(r[k] for r in runs) for k in ("first_frame_s", "wall_s", "peak_rss_mb")}
    print(f"median of {len(runs)}: first frame {summary['first_frame_s']:.2f} s (target <= 1.5), "
          f"wall {summary['wall_s']:.1f} s, peak RSS {summary['peak_rss_mb']:.0f} MB (target <= 600); "
          f"{os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "median": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
