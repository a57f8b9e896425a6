"""`streetwatch deliver`: send what an outbox still holds, after a scan gave up waiting or a receiver
was down, using the sinks recorded with the messages (credentials from `--sink` or the environment)."""

from __future__ import annotations

import argparse
from pathlib import Path

from detector.config.sinks import SinkConfig, sinks_from_urls, stored_url
from detector.errors import ConfigError
from detector.output.delivery import DeliveryPool, delivery_lines, undelivered
from detector.output.outbox import Outbox
from detector.output.store import open_store


def recorded_sinks(target: str, given: list[str]) -> tuple[list[SinkConfig], set[str]]:
    """The outbox's sinks, a `--sink` URL replacing the recorded sink it names (the same URL once its
    credentials are taken out: the database keeps none); and the ids of sinks with pending messages."""
    store = open_store(target)
    try:
        outbox = Outbox(store)
        recorded = outbox.sinks()
        waiting = {i for i, c in outbox.counts().items() if c.get("pending")}
    finally:
        store.close()
    by_stored = {stored_url(s.url): s for s in recorded}
    sinks = {s.id: s for s in recorded}
    for sink in sinks_from_urls(given):
        known = by_stored.get(stored_url(sink.url))
        if known is not None:
            sinks[known.id] = known.model_copy(update={"url": sink.url})
        else:
            sinks[sink.id] = sink
    return list(sinks.values()), waiting


def run_cli(args: argparse.Namespace) -> int:
    """Exit 0 when nothing is left pending or was dead-lettered now, 1 otherwise, 2 on a bad input."""
    if bool(args.out) == bool(args.db):
        raise ConfigError("give an output folder or --db, not both or neither",
                          fix="streetwatch deliver out/ or streetwatch deliver --db postgresql://...")
    if args.out and not (args.out / "events.sqlite").is_file():
        raise ConfigError("no events.sqlite in this folder", path=args.out, fix="pass the --out folder of a scan")
    if args.db and not args.db.startswith(("postgresql://", "postgres://")) and not Path(args.db).is_file():
        raise ConfigError("events database not found", path=Path(args.db), fix="pass an existing file or a URL")
    target = args.db or str(args.out / "events.sqlite")
    sinks, waiting = recorded_sinks(target, args.sink)
    sinks = [s for s in sinks if s.id in waiting]  # an old sink with nothing to send needs no secret
    if not sinks:
        print("nothing pending in the outbox")
        return 0
    counts = DeliveryPool(target, sinks).start().finish(args.timeout)
    for line in delivery_lines(counts):
        print(line)
    return 1 if undelivered(counts) else 0
