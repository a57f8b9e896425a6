"""Measure `streetwatch watch` on a real RTSP server: frames/s per camera, RSS over time, reconnect time.

    python scripts/watch_bench.py --cameras 4 --seconds 120 [--outage-at 40 --outage-s 15] [--fps 2]
                                  [--warmup 60] [--json out.json]

Starts scripts/rtsp_server.py (GStreamer, under /usr/bin/python3) with one mount per camera streaming
the parked-bike scene composed from real photos in ../shared (testkit/media.py), then the worker as its
own process (`python -m detector.cli watch`), and samples its /healthz, /metrics and RSS every
--sample-s. With --outage-at, the server is killed at that second for --outage-s and started again,
and the time from its return to each camera's first new frame is reported. Prints a JSON summary.
Note that the RTSP server (one H.264 encoder per camera) runs on the same machine and shares its CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from testkit import media  # noqa: E402
from testkit.rtsp import RtspServer, free_port, write_frames  # noqa: E402
from testkit.worker import WorkerProcess, wait_for  # noqa: E402

BAY = [[0.52, 0.0], [1.0, 0.0], [1.0, 1.0], [0.52, 1.0]]


def rss_mb(pid: int) -> float:
    """Resident memory of the worker and its children (none expected), in MiB."""
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def frames_after(worker: WorkerProcess, moment: float) -> dict[str, float] | None:
    """Each camera's last frame time once every camera has one after `moment`."""
    cameras = worker.health()["cameras"]
    if all((c["last_frame_unix"] or 0) > moment for c in cameras.values()):
        return {n: c["last_frame_unix"] for n, c in cameras.items()}
    return None


def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    scene = media.bike_scene(args.shared)
    frames = write_frames(work / "frames", scene.image)
    names = [f"cam{i + 1}" for i in range(args.cameras)]
    server = RtspServer({n: frames for n in names}, log=work / "rtsp.log")
    port = free_port()
    config = {
        "out": "out", "fps": args.fps, "batch": max(args.cameras, 1),
        "reconnect": {"initial_s": 0.5, "max_s": args.backoff_max},
        "http": {"port": port},
        "cameras": [
            {"camera": {"id": n, "timezone": "Europe/Amsterdam"}, "source": server.url(n),
             "zones": [{"id": "bike-bay", "type": "allowed", "kinds": ["bike"], "polygon": BAY}],
             "rules": {"bike": {"min_dwell_s": 10, "close_after_s": 30}}}
            for n in names
        ],
    }
    (work / "watch.yaml").write_text(yaml.safe_dump(config))
    worker = WorkerProcess(work / "watch.yaml", work / "out", port, work / "worker.log")
    server.start()
    worker.start()
    assert worker.process is not None
    pid = worker.process.pid
    wait_for(lambda: all(c["frames"] > 0 for c in worker.health()["cameras"].values()), 120, "first frames")
    began = time.time()
    samples = []
    outage: dict = {}
    processed0 = {n: worker.metric("streetwatch_frames_processed_total", n) for n in names}
    try:
        while (elapsed := time.time() - began) < args.seconds:
            if args.outage_at is not None and not outage and elapsed >= args.outage_at:
                server.kill()
                killed = time.time()
                time.sleep(args.outage_s)
                back = server.start()
                firsts = wait_for(lambda back=back: frames_after(worker, back), 120, "frames after return", step=0.05)
                outage = {"down_s": round(back - killed, 2),
                          "first_frame_after_return_s": {n: round(t - back, 2) for n, t in firsts.items()},
                          "connect_s": {n: c["connect_s"] for n, c in worker.health()["cameras"].items()},
                          "reconnects": {n: worker.metric("streetwatch_reconnects_total", n) for n in names}}
            samples.append({"t": round(elapsed, 1), "rss_mb": round(rss_mb(pid), 1)})
            time.sleep(args.sample_s)
        duration = time.time() - began
        processed = {n: worker.metric("streetwatch_frames_processed_total", n) - processed0[n] for n in names}
        dropped = {n: worker.metric("streetwatch_frames_dropped_total", n) for n in names}
        cpu = psutil.Process(pid).cpu_times()
    finally:
        code, stop_s = worker.terminate() if worker.process and worker.process.poll() is None else (None, None)
        server.kill()
    after = [s["rss_mb"] for s in samples if s["t"] >= args.warmup]
    result = {
        "cameras": args.cameras, "fps_asked": args.fps, "seconds": round(duration, 1),
        "frames_per_s": {n: round(v / duration, 3) for n, v in processed.items()},
        "frames_per_s_total": round(sum(processed.values()) / duration, 3),
        "frames_dropped": dropped,
        "worker_cpu_s": round(cpu.user + cpu.system, 1),
        "rss_mb_first_after_warmup": after[0] if after else None,
        "rss_mb_last": after[-1] if after else None,
        "rss_mb_max_after_warmup": max(after) if after else None,
        "rss_growth_pct": round(100 * (after[-1] - after[0]) / after[0], 2) if len(after) > 1 else None,
        "outage": outage or None,
        "exit_code": code, "stop_s": round(stop_s, 2) if stop_s else None,
        "samples": samples, "work_dir": str(work),
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=60, help="seconds before the RSS baseline")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--outage-at", type=float, help="kill the server this many seconds in")
    parser.add_argument("--outage-s", type=float, default=15.0)
    parser.add_argument("--backoff-max", type=float, default=2.0, help="reconnect backoff cap (s)")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text)
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=1))
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
