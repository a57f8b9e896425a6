"""`streetwatch` command line: scan video files, check and describe configuration files.

Exit codes: 0 done; 1 done, but some input was missing, unreadable or damaged (the rest was processed,
the problems are printed); 2 nothing could be done (bad configuration, missing weights, no readable
input); 130 interrupted (open events were closed and saved).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from detector.config import CameraConfig, load_camera, read_mapping
from detector.errors import StreetwatchError
from detector.modelcard import REPO_ROOT, ModelCard, load_card
from detector.sources import SampleMode

log = logging.getLogger("streetwatch")
DEFAULT_CARD = REPO_ROOT / "models" / "streetwatch-v2.yaml"


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def _iso(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r} (e.g. 2026-11-23T08:00:00+08:00)") from None


def add_model_and_sampling(parser: argparse.ArgumentParser) -> None:
    """The options `scan` and `rescan` share: which model, and which frames to decode."""
    parser.add_argument("--model", default=str(DEFAULT_CARD), help="model card file or bundled card name")
    parser.add_argument("--weights", type=Path, help="weights file overriding the card's")
    parser.add_argument("--fps", type=_positive, default=2.0, help="frames sampled per second of video (2)")
    parser.add_argument("--sample", choices=[m.value for m in SampleMode], default=SampleMode.AUTO.value,
                        help="fps: decode every frame, convert the sampled ones; refs: also skip decoding frames "
                             "no other frame refers to; keyframes: decode keyframes only; auto (default): "
                             "keyframes when they come at least as often as --fps asks, else refs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streetwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)

    scan = commands.add_parser("scan", help="find violations in video files of one camera")
    scan.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    scan.add_argument("--camera", required=True, type=Path, help="camera file (zones, rules, time zone)")
    scan.add_argument("--out", required=True, type=Path, help="output folder for events and snapshots")
    add_model_and_sampling(scan)
    scan.add_argument("--start", type=_iso, help="wall-clock time of the first frame (ISO 8601)")
    scan.add_argument("--batch", type=int, default=4, help="frames per inference batch (4)")
    scan.add_argument("--static-recheck-s", type=float, default=10.0, metavar="S",
                      help="skip inference on frames unchanged since the last inferred one, but infer at least "
                           "every S seconds of video (10); 0 infers every sampled frame")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    scan.add_argument("--json", action="store_true", help="print the events as JSON lines")

    add_rescan_parser(commands)

    config = commands.add_parser("config", help="validate or describe configuration files")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate camera files and model cards")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    schema = config_commands.add_parser("schema", help="print the JSON schema (for editor completion)")
    schema.add_argument("--card", action="store_true", help="the model card schema instead of the camera's")
    add_watch_parser(commands)
    add_eval_parser(commands)
    return parser


def add_eval_parser(commands: Any) -> None:
    ev = commands.add_parser("eval", help="measure a model card on a YOLO dataset or on photos with image labels")
    ev.add_argument("data", type=Path, help="YOLO dataset (folder with data.yaml, or the yaml), or an image folder")
    ev.add_argument("--labels", type=Path, help="image-level CSV: file + one yes/no column per kind "
                    "(default: DATA/labels.csv); images are looked up in DATA/images, else DATA")
    ev.add_argument("--model", default=str(DEFAULT_CARD), help="model card file or bundled card name")
    ev.add_argument("--weights", type=Path, help="weights file or export folder overriding the card's")
    ev.add_argument("--imgsz", type=int, help="inference size overriding the card's")
    ev.add_argument("--split", default="val", help="dataset split for a YOLO dataset (val)")
    ev.add_argument("--out", type=Path, help="JSON report (default: out/eval/CARD-DATA.json)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "scan":
            return run_scan(args)
        if args.command == "rescan":
            return run_rescan(args)
        if args.command == "watch":
            return run_watch(args)
        if args.command == "eval":
            return run_eval(args)
        if args.config_command == "check":
            return run_check(args.files)
        model = ModelCard if args.card else CameraConfig
        print(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False))
        return 0
    except StreetwatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # an output folder that cannot be written, a full disk
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e} — fix: check the path, its permissions and free space",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; open events were closed at their last sighting and saved", file=sys.stderr)
        return 130


def run_check(files: list[Path]) -> int:
    status = 0
    for path in files:
        try:
            keys = read_mapping(path, "file", fix="give a camera file, watch file or model card").keys()
            if "cameras" in keys:
                from detector.watchconfig import load_watch

                watch = load_watch(path)
                print(f"{path}: ok (watch file, cameras {[c.camera.id for c in watch.cameras]})")
            elif "camera" not in keys and ("weights" in keys or "extends" in keys):
                card = load_card(path).card
                print(f"{path}: ok (model card {card.name!r}, kinds {sorted(k.value for k in card.kinds())})")
            else:
                camera = load_camera(path)
                print(f"{path}: ok (camera {camera.camera.id!r}, {len(camera.zones)} zones, "
                      f"kinds {[k.value for k in camera.rules]})")
        except StreetwatchError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 2
    return status


def run_eval(args: argparse.Namespace) -> int:
    """Box metrics on a YOLO dataset, or image-level "would it raise this kind" on labelled photos."""
    from detector import evaluate

    loaded = evaluate.with_imgsz(load_card(args.model, weights=args.weights), args.imgsz)
    loaded.weights_path  # noqa: B018 - a missing file is an error before any work
    if evaluate.is_yolo_dataset(args.data):
        report = evaluate.evaluate_dataset(loaded, args.data, split=args.split)
        table = evaluate.dataset_table(report)
    else:
        images = args.data / "images" if (args.data / "images").is_dir() else args.data
        if not images.is_dir():
            raise StreetwatchError("not a folder of images nor a YOLO dataset", path=args.data,
                                   fix="pass a dataset folder with data.yaml, or an image folder with labels.csv")
        report = evaluate.evaluate_images(loaded, images, args.labels or args.data / "labels.csv")
        table = evaluate.images_table(report)
    out = args.out or Path("out") / "eval" / f"{loaded.card.name}-{args.data.resolve().name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{table}\nreport: {out}")
    return 1 if report.get("skipped") else 0


def run_scan(args: argparse.Namespace) -> int:
    from detector.pipeline import scan  # imports torch; keep `config` commands light

    camera = load_camera(args.camera)
    loaded = load_card(args.model, weights=args.weights)
    if args.out.exists() and not args.out.is_dir():
        raise StreetwatchError("--out is a file, not a folder", path=args.out, fix="pass a folder path")
    unknown = {k for k in camera.rules} - loaded.card.kinds()
    if unknown:
        log.warning("%s: model card %r cannot see %s; those rules never fire",
                    args.camera, loaded.card.name, sorted(k.value for k in unknown))
    loaded.weights_path  # noqa: B018 - resolve now: a missing file is an error before any decoding
    show_progress = sys.stderr.isatty() and not args.no_progress

    def progress(source: Any) -> Any:
        from tqdm import tqdm

        total = int((source.report.duration_s or 0) * args.fps) or None
        return tqdm(total=total, desc=source.path.name, unit="frame", disable=not show_progress, leave=False)

    result = scan(
        args.videos, camera, loaded, args.out, fps=args.fps, mode=SampleMode(args.sample), start=args.start,
        batch_size=max(1, args.batch), static_recheck_s=args.static_recheck_s, progress=progress,
    )
    if not result.reports:
        for failure in result.failed:
            print(f"error: {failure}", file=sys.stderr)
        print("error: no readable video; nothing was scanned", file=sys.stderr)
        return 2
    print_result(result, args.out, as_json=args.json)
    damaged = any(report.problems for report in result.reports)
    return 1 if result.failed or damaged else 0


def add_watch_parser(commands: Any) -> None:
    watch = commands.add_parser("watch", help="watch live cameras of a watch file until stopped")
    watch.add_argument("--config", required=True, type=Path, help="watch file (cameras with sources, output)")
    watch.add_argument("--out", type=Path, help="output folder overriding the watch file's `out`")
    watch.add_argument("--http-port", type=int, help="port of /healthz and /metrics overriding the file's (0: off)")
    watch.add_argument("--log-json", action="store_true", help="structured logs: one JSON object per line")


def run_watch(args: argparse.Namespace) -> int:
    """Exit 0 after SIGTERM/SIGINT (open events saved for resumption); 2 for a bad watch file or model."""
    from detector.health import JsonFormatter
    from detector.watch import Worker  # imports torch
    from detector.watchconfig import load_watch

    if args.log_json:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    config = load_watch(args.config)
    if args.out is not None:
        config = config.model_copy(update={"out": args.out})
    loaded = load_card(config.model or str(DEFAULT_CARD), weights=config.weights)
    loaded.weights_path  # noqa: B018 - a missing weights file is an error before any stream opens
    worker = Worker(config, loaded, config_path=args.config, http_port=args.http_port)
    worker.install_signals()
    worker.run()
    return 0


def print_result(result: Any, out: Path, *, as_json: bool) -> None:
    for event in result.events:
        if as_json:
            print(json.dumps(event, ensure_ascii=False))
        else:
            print(f"{event['id']}  {event['kind']:<8} zone={event['zone_id'] or '-':<12} "
                  f"{event['first_seen']} -> {event['last_seen']}  dwell={event['dwell_s']:.0f}s  "
                  f"conf={event['confidence']:.2f}  {event['snapshot']}")
    counts = Counter((e["kind"], e["zone_id"] or "(default)") for e in result.events)
    lines = [f"{'kind':<10}{'zone':<20}{'events':>6}"]
    lines += [f"{kind:<10}{zone:<20}{n:>6}" for (kind, zone), n in sorted(counts.items())]
    lines.append(f"{'total':<30}{len(result.events):>6}")
    speed = result.video_s / result.wall_s if result.wall_s else 0.0
    summary = [
        "",
        *lines,
        f"video: {result.video_s:.1f}s in {result.wall_s:.1f}s wall ({speed:.1f} video-s per s); model ran on "
        f"{result.inferred} of {result.inferred + result.skipped} sampled frames; output: {out}",
    ]
    for report in result.reports:
        for problem in report.problems:
            summary.append(f"warning: {report.uri}: {problem}")
    for failure in result.failed:
        summary.append(f"error: {failure}")
    print("\n".join(summary), file=sys.stderr if as_json else sys.stdout)


def add_rescan_parser(commands: Any) -> None:
    rescan = commands.add_parser("rescan", help="re-scan a video archive: resumable, idempotent, parallel")
    rescan.add_argument("archive", type=Path, metavar="ARCHIVE_ROOT", help="folder holding the recordings")
    rescan.add_argument("--cameras", required=True, type=Path,
                        help="archive file: path pattern, include globs, camera key -> camera file")
    where = rescan.add_argument_group("output (at least one)")
    where.add_argument("--out", type=Path, help="folder for snapshots, and for events.sqlite unless --db")
    where.add_argument("--db", help="events database: postgresql://user@host/db, or an SQLite file")
    add_model_and_sampling(rescan)
    rescan.add_argument("--batch", type=int, default=8, help="frames per inference batch (8)")
    rescan.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local: worker processes on this machine; ray: one Ray task per file")
    rescan.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    rescan.add_argument("--workers", type=int, help="local worker processes (default: sized to CPUs/GPUs)")
    rescan.add_argument("--force", action="store_true", help="re-scan every file, even unchanged ones")
    rescan.add_argument("--no-progress", action="store_true", help="no progress bars even on a terminal")
    rescan.add_argument("--json", action="store_true", help="print the report as JSON")


def run_rescan(args: argparse.Namespace) -> int:
    from detector.archive import load_archive
    from detector.rescan import rescan
    from detector.store import open_store

    if args.out is None and args.db is None:
        raise StreetwatchError("rescan needs --out DIR or --db URL", fix="add --out out/rescan")
    archive = load_archive(args.archive, args.cameras)
    loaded = load_card(args.model, weights=args.weights)
    loaded.weights_path  # noqa: B018 - a missing file is an error before any decoding
    store = open_store(args.db or args.out / "events.sqlite")
    show = sys.stderr.isatty() and not args.no_progress
    try:
        report = rescan(archive, loaded, store, out_dir=args.out, fps=args.fps, mode=args.sample,
                        batch=max(1, args.batch), engine=args.engine, address=args.address, workers=args.workers,
                        force=args.force, progress=(lambda n, h: _RescanBars(n, h)) if show else None)
    finally:
        store.close()
    if args.json:
        print(json.dumps({"files": report.files_total, "done": len(report.done), "skipped": len(report.skipped),
                          "failed": report.failed, "ignored": report.ignored, "assembled": report.assembled,
                          "events": report.events, "video_s": report.video_s, "wall_s": report.wall_s}))
    else:
        lines = [f"files: {report.files_total} found, {len(report.done)} scanned, {len(report.skipped)} unchanged "
                 f"(skipped), {len(report.failed)} failed, {len(report.ignored)} not matching the archive file"]
        lines += [f"error: {failure}" for failure in report.failed]
        lines += [f"{'camera':<20}{'kind':<10}{'events':>6}"]
        lines += [f"{camera:<20}{kind:<10}{n:>6}" for camera, kinds in sorted(report.events.items())
                  for kind, n in sorted(kinds.items())]
        lines.append(f"video: {report.video_s / 3600:.3f} h scanned in {report.wall_s / 3600:.4f} h wall "
                     f"({report.video_hours_per_wall_hour:.1f} video-hours per wall-hour); "
                     f"events rebuilt for: {', '.join(report.assembled) or 'none (nothing changed)'}")
        print("\n".join(lines))
    return 1 if report.failed else 0


class _RescanBars:
    """Two bars with ETA: files, and hours of video."""

    def __init__(self, files: int, hours: float) -> None:
        from tqdm import tqdm

        self.files = tqdm(total=files, desc="files", unit="file", position=0)
        self.hours = tqdm(total=round(hours, 3), desc="video", unit="h", position=1,
                          bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.3f}/{total:.3f} h [{elapsed}<{remaining}]")

    def update(self, result: Any) -> None:
        self.files.update(1)
        self.hours.update(round(result.video_s / 3600, 6))

    def close(self) -> None:
        self.files.close()
        self.hours.close()


if __name__ == "__main__":
    sys.exit(main())
