"""`streetwatch serve`: the review desk over an output folder or a database, with uvicorn."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detector.apps.serve.app import Desk, create_app
from detector.apps.serve.auth import Gate, load_token
from detector.errors import ConfigError


def desk_for(out: Path | None, db: str | None, token: str | None, tiles: str | None = None) -> Desk:
    """`out`: a folder with events.sqlite and snapshots/; `db`: a database URL (snapshots still under `out`)."""
    if out is None and db is None:
        raise ConfigError("serve needs --out DIR (events.sqlite and snapshots/) or --db URL",
                          fix="pass --out out/demo-bikes, or --db postgresql://... with --out for the snapshots")
    if db is None and not (out / "events.sqlite").is_file():  # type: ignore[operator]
        raise ConfigError("no events.sqlite here", path=out, fix="pass the --out folder of a scan, watch or patrol")
    return Desk(target=db or out / "events.sqlite", out_dir=out or Path.cwd(), gate=Gate(token),  # type: ignore[operator]
                tiles=tiles)


def run_cli(args: argparse.Namespace) -> int:
    import uvicorn

    token = load_token(args.token_file, args.host)
    desk = desk_for(args.out, args.db, token, args.tiles)
    desk.store()  # a database that cannot be opened is an error now, not at the first page
    print(f"review desk on http://{args.host}:{args.port}/ ({'token required' if token else 'open on loopback'})",
          file=sys.stderr)
    uvicorn.run(create_app(desk), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
