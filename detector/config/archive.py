"""Video archives: which files belong to which camera, when each starts, and whether a file has changed.

An archive file (`--cameras`) names the cameras and how their recordings are laid out on disk:

    pattern: "{camera}/{date:%Y%m%d}/{time:%H%M%S}.mp4"   # path below the archive root
    include: ["**/*.mp4"]                                   # glob patterns walked below the root
    cameras:
      cam-a: zones/cam-a.yaml                               # {camera} in the path -> camera file

Fields of the pattern: `{camera}` (required), `{date:FMT}` and `{time:FMT}` or `{start:FMT}` (strftime
codes, read in the camera's time zone; without them the start comes from the file's metadata), and
`{any}` (any text without a slash).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import Field, field_validator

from detector.config.base import Strict, read_mapping, validate_file
from detector.config.camera import CameraConfig, load_camera
from detector.errors import ConfigError

_CODES = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}",
          "S": r"\d{2}", "j": r"\d{3}", "f": r"\d{1,6}", "%": "%"}
_FIELD = re.compile(r"\{(\w+)(?::([^}]*))?\}")


def _format_regex(fmt: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            code = fmt[i + 1: i + 2]
            if code not in _CODES:
                raise ValueError(f"strftime code %{code} is not supported in patterns; use {sorted(_CODES)}")
            out.append(_CODES[code])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "".join(out)


class PathPattern:
    """`{camera}/{date:%Y%m%d}/{time:%H%M%S}.mp4` as a regex; `match()` gives the camera key and local start."""

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[str] = []
        pos, self.formats = 0, dict[str, str]()
        for m in _FIELD.finditer(text):
            parts.append(re.escape(text[pos:m.start()]))
            name, fmt = m.group(1), m.group(2)
            if name in self.formats or (name == "camera" and "camera" in text[:m.start()]):
                raise ValueError(f"field {{{name}}} appears twice")
            if name == "camera":
                parts.append(r"(?P<camera>[^/]+?)")
            elif name == "any":
                parts.append(r"[^/]*?")
            elif name in ("date", "time", "start"):
                if not fmt:
                    raise ValueError(f"{{{name}}} needs a strftime format, e.g. {{{name}:%Y%m%d}}")
                self.formats[name] = fmt
                parts.append(f"(?P<{name}>{_format_regex(fmt)})")
            else:
                raise ValueError(f"unknown field {{{name}}}; use camera, date, time, start or any")
            pos = m.end()
        parts.append(re.escape(text[pos:]))
        if "(?P<camera>" not in "".join(parts):
            raise ValueError("the pattern needs a {camera} field")
        if ("start" in self.formats) and ({"date", "time"} & set(self.formats)):
            raise ValueError("use either {start} or {date} and {time}")
        if len({"date", "time"} & set(self.formats)) == 1:
            raise ValueError("{date} and {time} go together")
        self.regex = re.compile("".join(parts) + r"\Z")

    def match(self, relative: str) -> tuple[str, datetime | None] | None:
        """(camera key, naive local start time or None) for a path relative to the archive root."""
        m = self.regex.match(relative)
        if m is None:
            return None
        if "start" in self.formats:
            return m["camera"], datetime.strptime(m["start"], self.formats["start"])
        if self.formats:
            return m["camera"], datetime.strptime(m["date"] + "\0" + m["time"],
                                                  self.formats["date"] + "\0" + self.formats["time"])
        return m["camera"], None


class ArchiveConfig(Strict):
    """How an archive is laid out and which camera file each camera uses."""

    pattern: str = Field(description="Path of a recording below the archive root, with {camera}, {date:FMT}, "
                         "{time:FMT} or {start:FMT}, and {any} fields.")
    include: list[str] = Field(["**/*"], description="Glob patterns of the files to consider, below the root.")
    cameras: dict[str, str] = Field(description="Camera key as it appears in paths -> camera file "
                                    "(relative to this file).")

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        PathPattern(value)
        return value


@dataclass(frozen=True)
class Archive:
    root: Path
    config: ArchiveConfig
    pattern: PathPattern
    cameras: dict[str, CameraConfig]  # key in paths -> camera
    camera_files: dict[str, Path]


def load_archive(root: Path, config_path: Path) -> Archive:
    if not root.is_dir():
        raise ConfigError("archive root is not a folder", path=root, fix="pass the folder holding the recordings")
    root = root.resolve()  # one identity per file, however the root was spelled
    data = read_mapping(config_path, "archive file",
                        fix="give pattern, include and cameras (see README, `streetwatch rescan`)")
    config = validate_file(ArchiveConfig, data, config_path, fix="see README, `streetwatch rescan`")
    files = {key: (config_path.parent / value) for key, value in config.cameras.items()}
    cameras = {key: load_camera(path) for key, path in files.items()}
    ids = [camera.id for camera in cameras.values()]
    if len(set(ids)) < len(ids):
        raise ConfigError(f"two cameras share a camera id ({sorted(i for i in ids if ids.count(i) > 1)[0]})",
                          path=config_path, fix="give every camera file its own camera.id")
    return Archive(root=root, config=config, pattern=PathPattern(config.pattern), cameras=cameras,
                   camera_files=files)
