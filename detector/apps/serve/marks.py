"""Boxes operators draw in the desk: a violation the model missed, on a camera page's picture, and an event's
box set right on its page (see `detector.output.marks`). Both are state changes like a review (login, CSRF);
`review export` takes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from detector.apps.serve.auth import Session
from detector.config.edit import CameraFile
from detector.kinds import Kind
from detector.output.marks import MarkRows
from detector.output.snapshots import stored_image

log = logging.getLogger(__name__)
MAX_BOXES = 50


class DrawnBox(BaseModel):
    kind: Kind = Field(description="What the box holds.")
    box: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in pixels of the picture.")


class MissedIn(BaseModel):
    uri: str | None = Field(None, description="A video of the camera the desk knows (None: the live picture).")
    t: float = Field(0.0, ge=0, le=7 * 86400, description="Seconds into that video.")
    boxes: list[DrawnBox] = Field(min_length=1, max_length=MAX_BOXES)


class FixIn(DrawnBox):
    """The event's box set right, in pixels of its clean frame (its kind too, if it was the wrong one)."""


def mark_routes(app: FastAPI, desk: Any, pictures: Any, editable: Callable[[str], CameraFile],
                known_source: Callable[[str, str | None], None], api_user: Callable[..., Any],
                check_csrf: Callable[[Request, Session, str | None], None]) -> None:
    def rows() -> MarkRows:
        return MarkRows(desk.store(), desk.out_dir)

    @app.post("/api/cameras/{camera_id}/marks")
    def mark_missed(camera_id: str, body: MissedIn, request: Request, user: Session = Depends(api_user)) -> Any:
        """Violations the model missed in the camera's picture (the live one, or a video's at `t`)."""
        check_csrf(request, user, None)
        camera = editable(camera_id).validate()
        known_source(camera_id, body.uri)
        image, taken_at = pictures.frame(camera, body.uri, body.t, as_shown=True)
        try:
            marks = rows().missed(camera_id, image, taken_at, [(b.kind.value, b.box) for b in body.boxes], user.name,
                                  source_uri=body.uri, pts_s=body.t if body.uri else None)
        except ValueError as e:
            return JSONResponse({"detail": str(e)}, status_code=422)
        log.info("%s marked %d missed violation(s) on %s", user.name, len(marks), camera_id,
                 extra={"event": "marked_missed", "camera": camera_id})
        return {"marks": marks}

    @app.get("/api/cameras/{camera_id}/marks")
    def camera_marks(camera_id: str, _: Session = Depends(api_user)) -> dict[str, Any]:
        return {"marks": rows().listing(camera=camera_id, missed_only=True)}

    @app.delete("/api/marks/{mark_id}")
    def remove_mark(mark_id: str, request: Request, user: Session = Depends(api_user)) -> dict[str, str]:
        check_csrf(request, user, None)
        if not rows().remove(mark_id, user.name):
            raise HTTPException(404, f"no mark {mark_id!r}")
        return {"removed": mark_id}

    @app.put("/api/events/{event_id}/box")
    def fix_box(event_id: str, body: FixIn, request: Request, user: Session = Depends(api_user)) -> Any:
        """Set the event's box right on its clean frame; that confirms the event (it is a violation, there)."""
        check_csrf(request, user, None)
        reviews = desk.reviews()
        event = reviews.event(event_id)
        if event is None:
            raise HTTPException(404, f"no event {event_id!r}")
        image = stored_image(desk.out_dir, event.get("clean_frame"))
        if image is None:
            raise HTTPException(409, f"event {event_id!r} has no clean frame to draw on")
        try:
            mark = rows().correct(event, body.kind.value, body.box, image, user.name)
        except ValueError as e:
            return JSONResponse({"detail": str(e)}, status_code=422)
        review = event["review"]
        if review is None or review["verdict"] != "confirmed":
            review = reviews.review(event_id, "confirmed", None, user.name)
        return {"mark": mark, "review": review}
