"""streetwatch: find street vending, piled garbage and misparked bikes in camera video.

The command line: argument parsing only; each command runs one function in `detector.apps`.

Exit codes: 0 done; 1 done, but some input was missing, unreadable or damaged (the rest was processed,
the problems are printed); 2 nothing could be done (bad configuration, missing weights, no readable
input); 130 interrupted (open events were closed and saved).
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from detector.errors import StreetwatchError
from detector.model.weights import DEFAULT_CARD
from detector.redact import redact, redact_logs
from detector.video.sampling import SampleMode


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("streetwatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _finite(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return number


def _positive(value: str) -> float:
    number = _finite(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def _fraction(value: str) -> float:
    """A share or threshold: above 0, below 1."""
    number = _finite(value)
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return number


def _seconds(value: str) -> float:
    """A duration: finite, zero or more."""
    number = _finite(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more seconds, got {value}")
    return number


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
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
    add_runtime(parser)
    parser.add_argument("--fps", type=_positive, help="frames sampled per second of video (default: 20 within the "
                        "shortest min_dwell_s of the camera's rules, at most 2; e.g. 0.33 for a 60 s dwell)")
    parser.add_argument("--sample", choices=[m.value for m in SampleMode], default=SampleMode.AUTO.value,
                        help="fps: decode every frame, convert the sampled ones; refs: also skip decoding frames "
                             "no other frame refers to; keyframes: decode keyframes only; auto (default): "
                             "keyframes when they come at least as often as --fps asks, else refs")


def add_sinks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sink", action="append", default=[], metavar="URL",
                        help="push event messages to a webhook (http[s]://...) or MQTT broker (mqtt[s]://host/prefix)"
                        "; repeatable, added to the camera file's sinks")
    parser.add_argument("--deliver-timeout", type=_seconds, default=30.0, metavar="S",
                        help="at the end, wait up to S seconds for sinks to take every message (30); the rest stays "
                        "in the outbox for `streetwatch deliver`")


def add_runtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=["auto", "openvino", "pytorch"],
                        help="auto (default, or $STREETWATCH_RUNTIME): the card's network compiled to OpenVINO, "
                             "exported on first use and cached ($STREETWATCH_CACHE), else PyTorch; openvino: "
                             "OpenVINO or an error; pytorch: the card as it is")


def add_static_recheck(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--static-recheck-s", type=_seconds, default=10.0, metavar="S",
                        help="skip inference on frames unchanged since the last inferred one, but infer at least "
                             "every S seconds of video (10); 0 infers every sampled frame")


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """Built once per process (a parser holds no state between parses; building it costs a few ms)."""
    parser = argparse.ArgumentParser(prog="streetwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"streetwatch {_version()}")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)

    scan = commands.add_parser("scan", help="find violations in video files of one camera")
    scan.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    scan.add_argument("--camera", required=True, type=Path, help="camera file (zones, rules, time zone)")
    scan.add_argument("--out", required=True, type=Path, help="output folder for events and snapshots")
    add_model_and_sampling(scan)
    scan.add_argument("--start", type=_iso, help="wall-clock time of the first frame (ISO 8601)")
    scan.add_argument("--batch", type=_count, default=4, help="frames per inference batch (4)")
    add_static_recheck(scan)
    scan.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    scan.add_argument("--json", action="store_true", help="print the events as JSON lines")
    add_sinks(scan)

    add_rescan_parser(commands)
    add_patrol_parser(commands)
    add_review_parsers(commands)
    add_learn_parser(commands)

    config = commands.add_parser("config", help="validate or describe configuration files")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate camera files and model cards")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    schema = config_commands.add_parser("schema", help="print the JSON schema (for editor completion)")
    schema.add_argument("--card", action="store_true", help="the model card schema instead of the camera's")
    schema.add_argument("--patrol", action="store_true", help="the patrol file schema instead of the camera's")
    add_watch_parser(commands)
    add_eval_parser(commands)
    deliver = commands.add_parser("deliver", help="send what the outbox of an output folder or database still holds")
    deliver.add_argument("out", nargs="?", type=Path, metavar="DIR", help="output folder holding events.sqlite")
    deliver.add_argument("--db", help="events database URL (postgresql://...) instead of DIR")
    deliver.add_argument("--sink", action="append", default=[], metavar="URL",
                         help="a sink's URL with its credentials (the database keeps URLs without passwords), "
                         "or a new sink for the messages of recorded sinks of the same id")
    deliver.add_argument("--timeout", type=_seconds, default=60.0, metavar="S",
                         help="give up after S seconds, leaving the rest pending (60)")
    models = commands.add_parser("models", help="prepare model cards ahead of time")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    export = models_commands.add_parser("export", help="compile cards to OpenVINO into the cache now "
                                        "(containers, CI), so no run pays it on first use")
    export.add_argument("cards", nargs="*", default=[str(DEFAULT_CARD)], metavar="CARD",
                        help="model card files or bundled card names (default: the default card)")
    export.add_argument("--weights", type=Path, help="weights file overriding the cards'")
    add_rollout_parsers(models_commands)
    return parser


def add_rollout_parsers(models_commands: Any) -> None:
    def store_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="events database URL (PostgreSQL, or an SQLite path)")
        p.add_argument("--events", type=Path, help="output folder whose events.sqlite holds the groups' cards")

    promote = models_commands.add_parser("promote", help="a camera group runs a card `learn` wrote, when it is "
                                         "better on the holdout and no worse than 0.02 in recall on the references")
    promote.add_argument("learnt", type=Path, metavar="LEARN_DIR", help="the --out folder of `streetwatch learn`")
    promote.add_argument("--group", required=True, help="the camera group (a watch file's card_group)")
    promote.add_argument("--force", action="store_true", help="promote even when the report says it is not better")
    store_args(promote)
    rollback = models_commands.add_parser("rollback", help="a camera group goes back to the card it ran before")
    rollback.add_argument("--group", required=True)
    store_args(rollback)
    listing = models_commands.add_parser("list", help="each camera group's card and the one before it")
    store_args(listing)


def add_eval_parser(commands: Any) -> None:
    ev = commands.add_parser("eval", help="measure a model card on a YOLO dataset or on photos with image labels")
    ev.add_argument("data", type=Path, help="YOLO dataset (folder with data.yaml, or the yaml), or an image folder")
    ev.add_argument("--labels", type=Path, help="image-level CSV: file + one yes/no column per kind "
                    "(default: DATA/labels.csv); images are looked up in DATA/images, else DATA")
    ev.add_argument("--model", default=str(DEFAULT_CARD), help="model card file or bundled card name")
    ev.add_argument("--weights", type=Path, help="weights file or export folder overriding the card's")
    ev.add_argument("--imgsz", type=_count, help="inference size overriding the card's")
    add_runtime(ev)
    ev.add_argument("--split", default="val", help="dataset split for a YOLO dataset (val)")
    ev.add_argument("--kind-map", action="append", default=[], metavar="CLASS=KIND",
                    help="YOLO dataset: which kind a box of CLASS makes its image 'yes' for, or none (built in: each "
                    "kind's own name and the dataset classes the kinds registry gives it, e.g. overflow -> garbage, "
                    "bicycle -> bike; any other class, e.g. garbage_bin, makes an image 'no')")
    ev.add_argument("--out", type=Path, help="JSON report (default: out/eval/CARD-DATA.json)")


def run(args: argparse.Namespace) -> int:
    """The command's one function in `detector.apps` (imported here: scan, watch and eval import torch)."""
    if args.command == "scan":
        from detector.apps.scan import run_cli
    elif args.command == "rescan":
        from detector.apps.rescan.run import run_cli
    elif args.command == "watch":
        from detector.apps.watch.worker import run_cli
    elif args.command == "pool":
        from detector.apps.watch.pool import pool_cli as run_cli
    elif args.command == "patrol":
        from detector.apps.patrol import run_cli
    elif args.command == "serve":
        from detector.apps.serve.run import run_cli
    elif args.command == "review":
        from detector.apps.review import run_cli
    elif args.command == "eval":
        from detector.apps.evaluate import run_cli
    elif args.command == "learn":
        from detector.apps.learn import run_cli
    elif args.command == "deliver":
        from detector.apps.deliver import run_cli
    elif args.command == "models":
        from detector.apps.models import run_cli
    else:
        from detector.apps import check

        if args.config_command == "check":
            return check.run_check(args.files)
        return check.print_schema(args.card, args.patrol)
    return run_cli(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    redact_logs()  # no credential of a camera URL reaches a log line
    # ultralytics announces every model it loads ("Loading ... for OpenVINO inference"): not the user's
    # business unless asked for; read when ultralytics is imported, by this process and its workers
    os.environ.setdefault("YOLO_VERBOSE", "True" if args.log_level == "DEBUG" else "False")
    try:
        return run(args)
    except StreetwatchError as e:
        print(f"error: {redact(str(e))}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # an output folder that cannot be written, a full disk
        where = f"{e.filename}: " if e.filename else ""
        print(redact(f"error: {where}{e.strerror or e} — fix: check the path, its permissions and free space"),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; open events were closed at their last sighting and saved", file=sys.stderr)
        return 130


def add_watch_parser(commands: Any) -> None:
    watch = commands.add_parser("watch", help="watch live cameras of a watch file until stopped")
    watch.add_argument("--config", required=True, type=Path, help="watch file (cameras with sources, output)")
    watch.add_argument("--out", type=Path, help="output folder overriding the watch file's `out`")
    watch.add_argument("--db", help="events database overriding the watch file's `db` (postgresql://...)")
    watch.add_argument("--http-port", type=int, help="port of /healthz and /metrics overriding the file's (0: off)")
    watch.add_argument("--log-json", action="store_true", help="structured logs: one JSON object per line")
    watch.add_argument("--sink", action="append", default=[], metavar="URL",
                       help="push every camera's event messages here too (webhook or MQTT URL; repeatable)")
    watch.add_argument("--pool", action="store_true",
                       help="share the store's camera list with the other watch processes of --db (see `pool:`)")
    watch.add_argument("--max-cameras", type=_count, metavar="N",
                       help="with --pool: the most cameras this process holds (overrides pool.max_cameras)")
    add_runtime(watch)
    pool = commands.add_parser("pool", help="the camera list that watch --pool processes share out")
    pool_commands = pool.add_subparsers(dest="pool_command", required=True)
    for name, text in (("list", "the cameras, who holds each, and the processes"),
                       ("add", "add or change the cameras of a watch file"), ("remove", "take cameras out")):
        sub = pool_commands.add_parser(name, help=text)
        sub.add_argument("--db", required=True, help="the pool's store (postgresql://..., or an SQLite file)")
        if name == "add":
            sub.add_argument("config", type=Path, metavar="WATCH_FILE", help="watch file whose cameras to add")
            sub.add_argument("--replace", action="store_true", help="the pool is exactly these (others removed)")
        elif name == "remove":
            sub.add_argument("camera", nargs="+", metavar="CAMERA_ID", help="camera ids")


def add_review_parsers(commands: Any) -> None:
    serve = commands.add_parser("serve", help="the review desk: events, snapshots, map and reviews in a browser")
    serve.add_argument("--out", type=Path, help="output folder (events.sqlite and snapshots/)")
    serve.add_argument("--db", help="events database URL (postgresql://...); snapshots are read under --out")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1; any other needs a token)")
    serve.add_argument("--port", type=int, default=8080, help="port (8080)")
    serve.add_argument("--token-file", type=Path, help="file holding the token (or $STREETWATCH_REVIEW_TOKEN)")
    serve.add_argument("--camera", type=Path, action="append", default=[], metavar="FILE",
                       help="a camera or watch file whose cameras' zones the desk may edit (repeatable)")
    serve.add_argument("--model", help="the card the camera pages detect with (default: the default card)")
    serve.add_argument("--tiles", help="map tile URL template, e.g. https://tile.example/{z}/{x}/{y}.png "
                       "(default: none, a blank map that works offline)")
    review = commands.add_parser("review", help="operators' reviews")
    review_commands = review.add_subparsers(dest="review_command", required=True)
    export = review_commands.add_parser("export", help="reviewed events as a YOLO dataset (confirmed: boxes; "
                                        "rejected: hard negatives) for scripts/build_dataset.py --source")
    export.add_argument("--out", type=Path, required=True, help="new dataset folder")
    export.add_argument("--events", type=Path, help="output folder the events are in (events.sqlite, snapshots/)")
    export.add_argument("--db", help="events database URL instead of DIR/events.sqlite (snapshots under --events)")
    export.add_argument("--since", help="only reviews made at or after this ISO time")


def add_learn_parser(commands: Any) -> None:
    learn = commands.add_parser("learn", help="teach the card this site's reviews: a new card and a report, on CPU")
    learn.add_argument("--card", default=str(DEFAULT_CARD), help="the card to start from (default: the default card)")
    learn.add_argument("--out", type=Path, required=True, help="folder for the new card, its report and its cache")
    learn.add_argument("--reviews", type=Path, action="append", default=[], metavar="EXPORT",
                       help="a `review export` folder (repeatable)")
    learn.add_argument("--photos", type=Path, action="append", default=[], metavar="DIR",
                       help="photos judged at image level (repeatable, each with --labels)")
    learn.add_argument("--labels", type=Path, action="append", default=[], metavar="CSV",
                       help="file,garbage (yes/no)[,camera,day] of the --photos before it")
    learn.add_argument("--keep", type=Path, action="append", default=[], metavar="DATASET",
                       help="older data learnt along, so old skills stay: a YOLO dataset (its train split)")
    learn.add_argument("--reference", type=Path, action="append", default=[], metavar="SET",
                       help="a set the old and new card are compared on (a YOLO dataset's val split, or photos "
                       "with labels.csv)")
    learn.add_argument("--floor", type=_fraction, default=0.05, help="garbage classes' threshold for candidates")
    learn.add_argument("--epochs", type=_count, default=40, help="the look's training epochs (40; seconds each)")
    learn.add_argument("--keep-sample", type=_count, default=300, help="photos of --keep learnt along (300)")
    learn.add_argument("--reference-limit", type=_count, default=200, help="photos per --reference set (200)")
    learn.add_argument("--holdout-share", type=_fraction, default=0.25, help="of each camera's days held out")
    learn.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def add_patrol_parser(commands: Any) -> None:
    patrol = commands.add_parser("patrol", help="geo-tagged events from a patrol vehicle's videos and GPS track")
    patrol.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="the drive's videos (one or more passes)")
    patrol.add_argument("--track", required=True, type=Path, help="GPS track: GPX, NMEA 0183 log (.nmea) or CSV "
                        "(time,lat,lon[,heading_deg,speed_mps])")
    patrol.add_argument("--track-offset-s", type=_finite, default=0.0, metavar="S",
                        help="seconds added to video times to match the track's clock (0)")
    patrol.add_argument("--camera", required=True, type=Path, help="patrol file (mount, fences, rules)")
    patrol.add_argument("--out", required=True, type=Path, help="output folder for events and snapshots")
    patrol.add_argument("--db", help="events database (postgresql://...) shared by vehicles, instead of DIR's")
    patrol.add_argument("--model", default=str(DEFAULT_CARD), help="model card file or bundled card name")
    patrol.add_argument("--weights", type=Path, help="weights file overriding the card's")
    add_runtime(patrol)
    patrol.add_argument("--fps", type=_positive, help="frames sampled per second (default: the patrol file's, 3)")
    patrol.add_argument("--batch", type=_count, default=4, help="frames per inference batch (4)")
    patrol.add_argument("--json", action="store_true", help="print the events as JSON lines")
    add_sinks(patrol)


def add_rescan_parser(commands: Any) -> None:
    rescan = commands.add_parser("rescan", help="re-scan a video archive: resumable, idempotent, parallel")
    rescan.add_argument("archive", type=Path, metavar="ARCHIVE_ROOT", help="folder holding the recordings")
    rescan.add_argument("--cameras", required=True, type=Path,
                        help="archive file: path pattern, include globs, camera key -> camera file")
    where = rescan.add_argument_group("output (at least one)")
    where.add_argument("--out", type=Path, help="folder for snapshots, and for events.sqlite unless --db")
    where.add_argument("--db", help="events database: postgresql://user@host/db, or an SQLite file")
    add_model_and_sampling(rescan)
    rescan.add_argument("--batch", type=_count, default=8, help="frames per inference batch (8)")
    add_static_recheck(rescan)
    rescan.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local: worker processes on this machine; ray: one Ray task per file")
    rescan.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    rescan.add_argument("--workers", type=_count, help="local worker processes (default: sized to CPUs/GPUs)")
    rescan.add_argument("--force", action="store_true", help="re-scan every file, even unchanged ones")
    rescan.add_argument("--no-progress", action="store_true", help="no progress bars even on a terminal")
    rescan.add_argument("--json", action="store_true", help="print the report as JSON")
    add_sinks(rescan)


if __name__ == "__main__":
    sys.exit(main())
