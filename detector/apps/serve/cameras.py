"""The review desk's camera pages: the camera's picture with its zones, what the zones make of its detections,
and a zone editor that writes the camera file back (see `detector.config.edit`).

Only cameras whose files the desk was started with can be edited (`--camera FILE`, or a watch process's own
watch file): a request names a camera id, never a path. Saving is a state change like a review (login, CSRF,
the host rules of the desk); `Desk.on_saved` lets a running watch apply the file at once, as a SIGHUP does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from detector.apps.serve.auth import Session
from detector.apps.serve.marks import mark_routes
from detector.config.camera import CameraConfig
from detector.config.edit import CameraFile, check_zones
from detector.detections import Detections
from detector.errors import ConfigError, StreetwatchError
from detector.kinds import kinds

MAX_ZONES = 200


class ZonesIn(BaseModel):
    zones: list[dict[str, Any]] = Field(max_length=MAX_ZONES, description="The camera's zones, as in its file.")


class PreviewIn(ZonesIn):
    uri: str | None = Field(None, description="A video of the camera the desk knows (None: the live picture).")
    t: float = Field(0.0, ge=0, le=7 * 86400, description="Seconds into that video.")


class Pictures:
    """Frames of a camera: the live one (watch), or one of a scanned video at a time; their detections, cached."""

    def __init__(self, live: Callable[[str], Any] | None, detect: Callable[[np.ndarray], Detections] | None) -> None:
        self.live, self.detect_fn = live, detect
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str | None, float], tuple[np.ndarray, datetime, Detections | None]] = {}
        self._shown: dict[str, tuple[np.ndarray, datetime]] = {}

    def frame(self, camera: CameraConfig, uri: str | None, t: float, *,
              as_shown: bool = False) -> tuple[np.ndarray, datetime]:
        """A video's frame at `t`, or the live one (`as_shown`: the live frame last handed out for this camera,
        the picture an operator drew on, not a newer one)."""
        if uri is None:
            with self._lock:
                shown = self._shown.get(camera.id) if as_shown else None
            if shown is not None:
                return shown
            frame = self.live(camera.id) if self.live else None
            if frame is None:
                raise HTTPException(404, f"no live picture of {camera.id} yet: pick a scanned video")
            with self._lock:
                self._shown[camera.id] = (frame.image, frame.time)
            return frame.image, frame.time
        from detector.video.file import VideoSource
        from detector.video.sampling import SampleMode
        from detector.video.seek import grab_frame

        image = grab_frame(uri, t)
        if image is None:
            raise HTTPException(404, f"no frame at {t:g} s of {Path(uri).name}")
        try:  # the frame's wall-clock time, as a scan of it gives it (hours of zones depend on it)
            source = VideoSource(Path(uri), tz=camera.tz, fps=1.0, mode=SampleMode.FPS)
            start = source.start_time
            source.close()
        except StreetwatchError:
            start = datetime.now(UTC)
        from datetime import timedelta

        return image, start + timedelta(seconds=t)

    def detections(self, camera: CameraConfig, uri: str | None, t: float) -> tuple[np.ndarray, datetime,
                                                                                   Detections | None]:
        key = (camera.id, uri, round(t, 1))
        with self._lock:
            if key in self._cache and uri is not None:
                return self._cache[key]
        image, time = self.frame(camera, uri, t)
        dets = self.detect_fn(image) if self.detect_fn else None
        with self._lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = (image, time, dets)
        return image, time, dets


def camera_routes(app: FastAPI, desk: Any, page: Callable[..., Response], page_user: Callable[..., Any],
                  api_user: Callable[..., Any], check_csrf: Callable[[Request, Session, str | None], None]) -> None:
    pictures = Pictures(desk.live, desk.detector)

    def editable(camera_id: str) -> CameraFile:
        path = desk.cameras.get(camera_id)
        if path is None:
            raise HTTPException(404, f"no camera {camera_id!r} on this desk (start it with --camera FILE)")
        try:
            return CameraFile(Path(path), camera_id)
        except ConfigError as e:
            raise HTTPException(409, str(e)) from None

    @app.get("/cameras", response_class=HTMLResponse, include_in_schema=False)
    def cameras_page(request: Request, user: Session | None = Depends(page_user)) -> Response:
        return page(request, "cameras.html", user, cameras=sorted(desk.cameras))

    @app.get("/cameras/{camera_id}", response_class=HTMLResponse, include_in_schema=False)
    def camera_page(request: Request, camera_id: str, user: Session | None = Depends(page_user)) -> Response:
        file = editable(camera_id)
        return page(request, "camera.html", user, camera_id=camera_id, file=str(file.path))

    _camera_api(app, desk, pictures, editable, api_user, check_csrf)
    mark_routes(app, desk, pictures, editable, lambda c, uri: _known_source(desk, c, uri), api_user, check_csrf)


def _camera_api(app: FastAPI, desk: Any, pictures: Pictures, editable: Callable[[str], CameraFile],
                api_user: Callable[..., Any], check_csrf: Callable[[Request, Session, str | None], None]) -> None:
    @app.get("/api/cameras/{camera_id}")
    def get_camera(camera_id: str, _: Session = Depends(api_user)) -> dict[str, Any]:
        file = editable(camera_id)
        sources = [s for s in desk.store().sources(camera_id) if Path(s).is_file()]
        return {"id": camera_id, "file": str(file.path), "zones": file.zones(), "kinds": [k.value for k in kinds()],
                "live": desk.live is not None, "sources": [{"uri": s, "duration_s": _duration(s)} for s in sources]}

    @app.get("/api/cameras/{camera_id}/frame.jpg")
    def frame(camera_id: str, uri: str | None = None, t: float = 0.0, user: Session = Depends(api_user)) -> Response:
        camera = editable(camera_id).validate()
        _known_source(desk, camera_id, uri)
        image, _time = pictures.frame(camera, uri, t)
        _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return Response(jpeg.tobytes(), media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.post("/api/cameras/{camera_id}/preview")
    def preview(camera_id: str, body: PreviewIn, _: Session = Depends(api_user)) -> dict[str, Any]:
        """The candidate zones checked as `config check` would, and what they make of the frame's detections."""
        problems = check_zones(body.zones)
        _known_source(desk, camera_id, body.uri)
        camera = editable(camera_id).validate()
        if not problems:
            try:
                camera = camera.model_validate({**camera.model_dump(), "zones": body.zones})
            except ValueError as e:
                return {"problems": {}, "error": str(e).splitlines()[0], "detections": []}
        image, time, dets = pictures.detections(camera, body.uri, body.t)
        return {"problems": problems, "error": None, "size": [image.shape[1], image.shape[0]],
                "detections": _explained(camera, dets, image, time) if dets is not None else None}

    @app.put("/api/cameras/{camera_id}/zones")
    def save_zones(camera_id: str, body: ZonesIn, request: Request, user: Session = Depends(api_user)) -> Any:
        check_csrf(request, user, None)
        problems = check_zones(body.zones)
        if problems:
            return JSONResponse({"detail": "some zones are not valid; nothing was written",
                                 "problems": problems}, status_code=422)
        file = editable(camera_id)
        file.replace_zones(body.zones)
        try:
            backup = file.save()
        except ConfigError as e:
            return JSONResponse({"detail": f"{e.message}; nothing was written", "problems": {}}, status_code=422)
        if desk.on_saved is not None:
            desk.on_saved(camera_id)
        return {"saved": str(file.path), "backup": str(backup), "zones": len(body.zones), "by": user.name}


def _known_source(desk: Any, camera_id: str, uri: str | None) -> None:
    """Only videos this camera's events came from: a request must not make the desk open any file."""
    if uri is not None and uri not in desk.store().sources(camera_id):
        raise HTTPException(404, f"{camera_id} has no video {uri!r}")


def _duration(uri: str) -> float | None:
    from detector.video.seek import probe_duration

    try:
        return probe_duration(Path(uri))
    except Exception:  # a file that will not probe shows without a slider
        return None


def _explained(camera: CameraConfig, dets: Detections, image: np.ndarray, time: datetime) -> list[dict[str, Any]]:
    from detector.camera.zones import ZoneFilter

    h, w = image.shape[:2]
    verdicts = ZoneFilter(camera).explain(dets, (w, h), time)
    return [{"box": [round(float(v), 1) for v in dets.xyxy[i]], "kind": str(dets.kind[i]),
             "class": str(dets.class_name[i]), "confidence": round(float(dets.confidence[i]), 3),
             "violation": bool(violation), "why": why}
            for i, (violation, why) in enumerate(verdicts)]
