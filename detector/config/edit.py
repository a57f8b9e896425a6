"""A camera's zones written back into the file they came from, keeping everything else the user wrote.

The review desk's zone editor changes one list, `zones`, of one camera: a camera file's own, or one entry of a
watch file's `cameras`. The file is read and written with ruamel.yaml's round trip, so its comments, key order,
quoting and the other settings stay as they were; zones that did not change keep their own text. The new text
is validated exactly as a run would read it (the same loaders, on the file's own folder, so relative paths
resolve alike) before anything is written; the previous file is kept beside it as `NAME.bak`; the write is
atomic.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from detector.config.base import read_yaml, write_bytes_atomic
from detector.config.camera import CameraConfig, Zone, load_camera
from detector.errors import ConfigError

ZONE_KEYS = ("id", "type", "kinds", "hours", "days", "min_dwell_s", "polygon", "units", "anchor")


def _yaml() -> YAML:
    yaml = YAML()  # round trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # long flow lists (polygons) stay on one line
    yaml.indent(mapping=2, sequence=4, offset=2)  # "zones:\n  - id: ...", as the example files write lists
    return yaml


class CameraFile:
    """One camera's entry in its file; `replace_zones()` then `save()`."""

    def __init__(self, path: Path, camera_id: str) -> None:
        self.path, self.camera_id = path, camera_id
        read_yaml(path, "camera file")  # the same size, alias and depth limits as any reader
        try:
            self.data = _yaml().load(path.read_text(encoding="utf-8"))
        except Exception as e:  # ruamel's own errors: the file is not the YAML it was when loaded
            raise ConfigError(f"cannot read it for editing ({type(e).__name__})", path=path,
                              fix="fix the file by hand, then edit its zones again") from None
        self.watch = isinstance(self.data, dict) and "cameras" in self.data
        self.entry = self._find()

    def _find(self) -> CommentedMap:
        entries = self.data["cameras"] if self.watch else [self.data]
        for entry in entries or []:
            camera = entry.get("camera") if isinstance(entry, dict) else None
            if isinstance(camera, dict) and camera.get("id") == self.camera_id:
                return entry  # type: ignore[no-any-return]
        raise ConfigError(f"no camera {self.camera_id!r} in it", path=self.path, fix="check the camera id")

    def zones(self) -> list[dict[str, Any]]:
        """The camera's zones as plain data (the editor's input)."""
        return [_plain(z) for z in self.entry.get("zones") or []]

    def replace_zones(self, zones: list[dict[str, Any]]) -> None:
        """The new zones in place of the old; one that did not change keeps its node (and its comments)."""
        old = {(z.get("id"), _key(_plain(z))): z for z in self.entry.get("zones") or []}
        seq = CommentedSeq()
        for zone in zones:
            seq.append(old.get((zone.get("id"), _key(zone))) or _node(zone))
        if "zones" in self.entry and isinstance(self.entry["zones"], CommentedSeq):
            self.entry["zones"].clear()
            self.entry["zones"].extend(seq)
        else:
            self.entry["zones"] = seq

    def text(self) -> str:
        out = io.StringIO()
        _yaml().dump(self.data, out)
        return out.getvalue()

    def validate(self) -> CameraConfig:
        """The edited file read as a run reads it (from a temporary copy beside it); a `ConfigError` if it would
        not load."""
        from detector.config.watch import load_watch

        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".check.yaml", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.text())
            try:
                if self.watch:
                    return next(c for c in load_watch(Path(tmp)).cameras if c.id == self.camera_id)
                return load_camera(Path(tmp))
            except ConfigError as e:  # said of the real file, not of the temporary copy
                raise ConfigError(e.message.replace(tmp, str(self.path)), path=self.path,
                                  fix=e.fix or "fix the zone and save again") from None
        finally:
            Path(tmp).unlink(missing_ok=True)

    def save(self) -> Path:
        """Validate, keep the previous file as NAME.bak, write the new one atomically; the backup's path."""
        self.validate()
        text = self.text()
        backup = self.path.with_name(self.path.name + ".bak")
        backup.write_bytes(self.path.read_bytes())
        write_bytes_atomic(self.path, text.encode("utf-8"))
        return backup


def check_zones(zones: list[dict[str, Any]]) -> dict[int, str]:
    """Each zone's own problem, by its index (as `config check` would say it), for the editor to show at the
    shape; duplicate ids too."""
    from pydantic import ValidationError

    from detector.config.base import format_validation_error

    problems: dict[int, str] = {}
    seen: dict[str, int] = {}
    for i, zone in enumerate(zones):
        try:
            Zone.model_validate(zone)
        except ValidationError as e:
            problems[i] = format_validation_error(e)
            continue
        if zone["id"] in seen:
            problems[i] = f"zone id {zone['id']!r} is used twice (also zone {seen[zone['id']] + 1})"
        seen.setdefault(zone["id"], i)
    return problems


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    return node


def _key(zone: dict[str, Any]) -> str:
    import json

    return json.dumps({k: zone.get(k) for k in ZONE_KEYS if zone.get(k) is not None}, sort_keys=True)


def _node(zone: dict[str, Any]) -> CommentedMap:
    """A new zone as the example files write one: flow-style lists (a polygon on one line)."""
    node = CommentedMap()
    for key in ZONE_KEYS:
        value = zone.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            value = _flow([_flow(list(v)) if isinstance(v, list | tuple) else v for v in value])
        node[key] = value
    return node


def _flow(items: list[Any]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq
