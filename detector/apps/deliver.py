"""`streetwatch deliver`: send what an outbox still holds, after a scan gave up waiting or a receiver
was down, using the sinks recorded with the messages (credentials from `--sink` or the environment)."""

from __future__ import annotations

import argparse

from detector.apps.scan import delivery_lines
from detector.config.sinks import SinkConfig, sinks_from_urls
from detector.errors import ConfigError
from detector.output.delivery import DeliveryPool
from detector.output.outbox import Outbox
from detector.output.store import open_store


def recorded_sinks(target: str, given: list[str]) -> list[SinkConfig]:
    """The outbox's sinks; a `--sink` URL of the same id (e.g. with its password) replaces the recorded one."""
    store = open_store(target)
    try:
        recorded = Outbox(store).sinks()
    finally:
        store.close()
    extra = sinks_from_urls(given)
    by_id = {s.id: s for s in recorded}
    for sink in extra:
        options = by_id[sink.id].model_dump(exclude={"url"}) if sink.id in by_id else {}
        by_id[sink.id] = SinkConfig(url=sink.url, **options)
    return list(by_id.values())


def run_cli(args: argparse.Namespace) -> int:
    """Exit 0 when nothing is left pending or dead, 1 otherwise, 2 on a bad input."""
    if bool(args.out) == bool(args.db):
        raise ConfigError("give an output folder or --db, not both or neither",
                          fix="streetwatch deliver out/ or streetwatch deliver --db postgresql://...")
    if args.out and not (args.out / "events.sqlite").is_file():
        raise ConfigError("no events.sqlite in this folder", path=args.out, fix="pass the --out folder of a scan")
    target = args.db or str(args.out / "events.sqlite")
    sinks = recorded_sinks(target, args.sink)
    if not sinks:
        print("no sinks recorded in this outbox: nothing to deliver")
        return 0
    counts = DeliveryPool(target, sinks).start().finish(args.timeout)
    for line in delivery_lines(counts):
        print(line)
    return 1 if any(c.get("pending") or c.get("dead") for c in counts.values()) else 0


