"""`streetwatch serve`: the review desk over an output folder or a database, with uvicorn."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from detector.apps.serve.app import Desk, create_app
from detector.apps.serve.auth import Gate, load_token
from detector.errors import ConfigError


def desk_for(out: Path | None, db: str | None, token: str | None, tiles: str | None = None,
             cameras: list[Path] | None = None, model: str | None = None) -> Desk:
    """`out`: a folder with events.sqlite and snapshots/; `db`: a database URL (snapshots still under `out`);
    `cameras`: camera or watch files whose cameras' zones the desk may edit."""
    if out is None and db is None:
        raise ConfigError("serve needs --out DIR (events.sqlite and snapshots/) or --db URL",
                          fix="pass --out out/demo-bikes, or --db postgresql://... with --out for the snapshots")
    if db is None and not (out / "events.sqlite").is_file():  # type: ignore[operator]
        raise ConfigError("no events.sqlite here", path=out, fix="pass the --out folder of a scan, watch or patrol")
    return Desk(target=db or out / "events.sqlite", out_dir=out or Path.cwd(), gate=Gate(token),  # type: ignore[operator]
                tiles=tiles, cameras=editable_cameras(cameras or []), model=model)


def editable_cameras(files: list[Path]) -> dict[str, Path]:
    """Camera id -> its file, for each camera of the camera and watch files given; each read (and checked) now."""
    from detector.config.camera import load_camera
    from detector.config.watch import load_watch

    found: dict[str, Path] = {}
    for path in files:
        ids = [c.id for c in load_watch(path).cameras] if _is_watch_file(path) else [load_camera(path).id]
        for camera_id in ids:
            if camera_id in found:
                raise ConfigError(f"camera {camera_id!r} is in two of the files given", path=path,
                                  fix="give each camera's file once")
            found[camera_id] = path.resolve()
    return found


def _is_watch_file(path: Path) -> bool:
    from detector.config.base import read_mapping

    return "cameras" in read_mapping(path, "file", fix="give a camera file or a watch file")


class AppServer:
    """An ASGI app on uvicorn in a thread; port 0 takes a free one (`port` says which, once started)."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    access_log=False))
        self.port = port
        self._thread = threading.Thread(target=self.server.run, name="http-app", daemon=True)

    def start(self, timeout: float = 20.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            raise OSError(f"the server did not start on port {self.port}")
        self.port = self.server.servers[0].sockets[0].getsockname()[1] if self.server.servers else self.port

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)


class DeskServer(AppServer):
    """The desk with a watch process's /healthz and /metrics (`desk.health`), for `watch`."""

    def __init__(self, desk: Desk, host: str, port: int) -> None:
        super().__init__(create_app(desk), host, port)
        self.inference_seconds = desk.health.inference_seconds


def run_cli(args: argparse.Namespace) -> int:
    import uvicorn

    token = load_token(args.token_file, args.host)
    desk = desk_for(args.out, args.db, token, args.tiles, args.camera, args.model)
    desk.store()  # a database that cannot be opened is an error now, not at the first page
    print(f"review desk on http://{args.host}:{args.port}/ ({'token required' if token else 'open on loopback'})",
          file=sys.stderr)
    uvicorn.run(create_app(desk), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
