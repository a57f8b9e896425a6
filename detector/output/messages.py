"""Event messages for sinks: one per lifecycle change, with the work order a city platform files.

Built when the change is stored (so the outbox row holds exactly what will be sent) except the snapshot
bytes and `sent_at`, which are added at each attempt: a JPEG does not belong in the database twice.
`message_id` depends only on the event and the change, so a retry, a restart or a re-scan of the same
input sends the same id and a receiver can drop duplicates.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector.config.camera import CameraConfig
from detector.config.places import load_categories, load_grid
from detector.config.sinks import SinkConfig
from detector.kinds import spec_of


def message_id(event_id: str, type_: str, last_seen: str) -> str:
    """`opened` is one per event whatever its later course; an update or a close is one per state."""
    state = "" if type_ == "opened" else last_seen
    return hashlib.sha256(f"{event_id}|{type_}|{state}".encode()).hexdigest()[:32]


def _duration(seconds: float) -> tuple[str, str]:
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60}小时{minutes % 60}分钟", f"{minutes // 60} h {minutes % 60} min"
    if minutes:
        return f"{minutes}分钟", f"{minutes} min"
    return f"{int(seconds)}秒", f"{int(seconds)} s"


def work_order(event: dict[str, Any], config: CameraConfig) -> dict[str, Any]:
    """What the platform files: category (the city's code when it has a dictionary), bilingual title and
    description, camera, place (with its grid cell), evidence."""
    camera = config.camera
    spec = spec_of(event["kind"])
    zh_kind, en_kind = spec.label_zh, spec.label_en
    place = (camera.location.address if camera.location and camera.location.address else None) or camera.name \
        or camera.id
    if event.get("location"):  # seen from a moving vehicle: the object's own place
        place = f"{event['location']['lat']:.6f}, {event['location']['lon']:.6f}"
    since = datetime.fromisoformat(event["first_seen"]).astimezone(camera.tz).strftime("%Y-%m-%d %H:%M:%S")
    zh_for, en_for = _duration(float(event["dwell_s"]))
    zone = f"（区域 {event['zone_id']}）" if event.get("zone_id") else ""
    zone_en = f" (zone {event['zone_id']})" if event.get("zone_id") else ""
    category = dict(event["category"])
    if config.categories:
        category = load_categories(config.categories).get(category["code"], category)
    return {
        "category": category,
        "title": {"zh": f"{category['name']}：{place}", "en": f"{en_kind.capitalize()} at {place}"},
        "description": {
            "zh": f"{place}{zone}自{since}起发现{zh_kind}，已持续{zh_for}。",
            "en": f"{en_kind.capitalize()} at {place}{zone_en}, seen since {since} for {en_for}.",
        },
        "discovered_at": event["first_seen"],
        "camera": {"id": camera.id, "name": camera.name, "device_id": camera.device_id},
        "location": _location(config, event),
        "evidence": {"snapshot": event.get("snapshot"), "clean_frame": event.get("clean_frame"),
                     "crop": event.get("crop")},
    }


def _location(config: CameraConfig, event: dict[str, Any]) -> dict[str, Any] | None:
    """The object's place for a moving camera's event (with its accuracy), else where the camera stands."""
    loc, found = config.camera.location, event.get("location")
    if found:
        lon, lat, address, grid_code, department = found["lon"], found["lat"], None, None, None
    elif loc is not None:
        lon, lat, address, grid_code, department = loc.lon, loc.lat, loc.address, loc.grid_code, loc.department
    else:
        return None
    if config.grid and (grid_code is None or department is None):
        cell = load_grid(config.grid).cell_at(lon, lat)
        if cell:
            grid_code, department = grid_code or cell.code, department or cell.department
    out = {"lon": lon, "lat": lat, "address": address, "grid_code": grid_code, "department": department}
    if found:
        out.update(accuracy_m=found.get("accuracy_m"), method=found.get("method"), vehicle=event.get("vehicle"))
    return out


def build(event: dict[str, Any], type_: str, camera: CameraConfig, out_dir: Path | None) -> dict[str, Any]:
    """The stored body of a message; `snapshot_file` is where the JPEG is read from when it is sent."""
    snapshot = event.get("snapshot")
    return {
        "message_id": message_id(event["id"], type_, event["last_seen"]),
        "type": type_,
        "event": event,
        "work_order": work_order(event, camera),
        "snapshot_file": str((out_dir / snapshot).resolve()) if snapshot and out_dir else snapshot,
    }


def for_sending(stored: dict[str, Any], sink: SinkConfig) -> bytes:
    """The JSON bytes sent to `sink`: the stored body, `sent_at`, and the snapshot as the sink wants it."""
    import json

    body = {k: v for k, v in stored.items() if k != "snapshot_file"}
    body["sent_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    path = stored.get("snapshot_file")
    relative = stored["event"].get("snapshot")
    if sink.snapshot == "none" or not path:
        body["snapshot"] = None
    elif sink.snapshot == "url":
        body["snapshot"] = {"url": f"{sink.snapshot_url.rstrip('/')}/{stored['event']['id']}/snapshot.jpg",  # type: ignore[union-attr]
                            "path": relative}
    else:
        try:
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        except OSError:  # moved or cleaned away: the message still goes, without the picture
            data = None
        body["snapshot"] = {"jpeg_base64": data, "path": relative}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
