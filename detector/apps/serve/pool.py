"""The pool's camera list in the desk: see it, add or change a camera, take one out (`watch --pool`).

A camera sent here is a watch-file camera entry as JSON, checked by the same loader rules a watch file's
are (unknown keys, sources, zones that cannot be used); a file source must be an absolute path, since
no file is there to be relative to. The processes of the pool pick a change up within a second or so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request
from pydantic import ValidationError

from detector.apps.serve.auth import Session
from detector.camera.zones import ZoneFilter
from detector.config.watch import LiveCamera
from detector.errors import StreetwatchError
from detector.output.pool import PoolRows, camera_entry

log = logging.getLogger(__name__)


def checked_camera(camera_id: str, entry: dict[str, Any]) -> LiveCamera:
    """The entry as a camera of the pool, or a 422 saying what is wrong with it."""
    try:
        camera = LiveCamera.model_validate(entry)
        ZoneFilter(camera)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise HTTPException(422, f"{where}: {first['msg']}") from None
    except (StreetwatchError, ValueError) as e:
        raise HTTPException(422, str(e)) from None
    if camera.id != camera_id:
        raise HTTPException(422, f"camera.id is {camera.id!r}, the address names {camera_id!r}")
    if camera.is_file and not Path(camera.source).is_absolute():
        raise HTTPException(422, "a file source must be an absolute path (there is no file to be relative to)")
    return camera


def pool_routes(app: FastAPI, rows: Callable[[], PoolRows], api_user: Callable[..., Any],
                check_csrf: Callable[[Request, Session, str | None], None]) -> None:
    @app.get("/api/pool")
    def pool_state(_: Session = Depends(api_user)) -> dict[str, Any]:
        """The cameras with their holders, the processes, and the cameras nobody watches."""
        return rows().state()

    @app.put("/api/pool/cameras/{camera_id}")
    def put_camera(camera_id: str, request: Request, entry: Annotated[dict[str, Any], Body()],
                   user: Session = Depends(api_user)) -> dict[str, list[str]]:
        """Add or change a camera (a watch-file camera entry)."""
        check_csrf(request, user, None)
        camera = checked_camera(camera_id, entry)
        changed = rows().publish({camera.id: camera_entry(camera)})
        log.info("pool: %s put camera %s %s", user.name, camera_id, changed, extra={"event": "pool_camera_put"})
        return changed

    @app.delete("/api/pool/cameras/{camera_id}")
    def delete_camera(camera_id: str, request: Request, user: Session = Depends(api_user)) -> dict[str, list[str]]:
        """Take a camera out of the pool: its holder stops it within a second or so (its open events stay open)."""
        check_csrf(request, user, None)
        if not rows().remove([camera_id]):
            raise HTTPException(404, f"no camera {camera_id!r} in the pool")
        log.info("pool: %s removed camera %s", user.name, camera_id, extra={"event": "pool_camera_removed"})
        return {"removed": [camera_id]}
