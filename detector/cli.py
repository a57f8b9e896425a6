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

from detector.config import CameraConfig, load_camera
from detector.errors import StreetwatchError
from detector.modelcard import REPO_ROOT, ModelCard, load_card
from detector.sources import SampleMode

log = logging.getLogger("streetwatch")
DEFAULT_CARD = REPO_ROOT / "models" / "coco.yaml"


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streetwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)

    scan = commands.add_parser("scan", help="find violations in video files of one camera")
    scan.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    scan.add_argument("--camera", required=True, type=Path, help="camera file (zones, rules, time zone)")
    scan.add_argument("--out", required=True, type=Path, help="output folder for events and snapshots")
    scan.add_argument("--model", default=str(DEFAULT_CARD), help="model card file or bundled card name")
    scan.add_argument("--weights", type=Path, help="weights file overriding the card's")
    scan.add_argument("--fps", type=_positive, default=2.0, help="frames sampled per second of video (2)")
    scan.add_argument("--sample", choices=[m.value for m in SampleMode], default=SampleMode.FPS.value,
                      help="fps: decode all, convert the sampled; keyframes: decode keyframes only")
    scan.add_argument("--start", type=_iso, help="wall-clock time of the first frame (ISO 8601)")
    scan.add_argument("--batch", type=int, default=4, help="frames per inference batch (4)")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    scan.add_argument("--json", action="store_true", help="print the events as JSON lines")

    config = commands.add_parser("config", help="validate or describe configuration files")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate camera files and model cards")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    schema = config_commands.add_parser("schema", help="print the JSON schema (for editor completion)")
    schema.add_argument("--card", action="store_true", help="the model card schema instead of the camera's")
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
    except KeyboardInterrupt:
        print("interrupted; open events were closed at their last sighting and saved", file=sys.stderr)
        return 130


def run_check(files: list[Path]) -> int:
    status = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else ""
            if "weights:" in text and "camera:" not in text:
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
        batch_size=max(1, args.batch), progress=progress,
    )
    if not result.reports:
        for failure in result.failed:
            print(f"error: {failure}", file=sys.stderr)
        print("error: no readable video; nothing was scanned", file=sys.stderr)
        return 2
    print_result(result, args.out, as_json=args.json)
    damaged = any(report.problems for report in result.reports)
    return 1 if result.failed or damaged else 0


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
        f"video: {result.video_s:.1f}s in {result.wall_s:.1f}s wall ({speed:.1f} video-s per s); output: {out}",
    ]
    for report in result.reports:
        for problem in report.problems:
            summary.append(f"warning: {report.uri}: {problem}")
    for failure in result.failed:
        summary.append(f"error: {failure}")
    print("\n".join(summary), file=sys.stderr if as_json else sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
