"""The recordings of an archive: which files belong to which camera, when each starts, and whether a
file has changed since it was scanned."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from detector.config.archive import Archive

MIB = 1 << 20


@dataclass(frozen=True)
class ArchiveFile:
    """A recording found in the archive."""

    path: Path
    relative: str
    camera_key: str
    start: datetime | None  # from the name, in the camera's time zone; None: from the file's metadata
    size: int
    mtime: float


def walk(archive: Archive) -> tuple[list[ArchiveFile], list[str]]:
    """Files matching the globs and the pattern, of known cameras; and the paths left out, with why."""
    found: dict[str, Path] = {}
    for glob in archive.config.include:
        for path in archive.root.glob(glob):
            if path.is_file() and not path.name.startswith("."):
                found.setdefault(path.relative_to(archive.root).as_posix(), path)
    files, ignored = [], []
    for relative in sorted(found):
        path = found[relative]
        matched = archive.pattern.match(relative)
        if matched is None:
            ignored.append(f"{path}: does not match the pattern {archive.pattern.text!r}")
            continue
        key, start = matched
        camera = archive.cameras.get(key)
        if camera is None:
            ignored.append(f"{path}: camera {key!r} is not in the archive file")
            continue
        stat = path.stat()
        files.append(ArchiveFile(path=path, relative=relative, camera_key=key,
                                 start=start.replace(tzinfo=camera.tz) if start else None,
                                 size=stat.st_size, mtime=stat.st_mtime))
    return files, ignored


def fingerprint(path: Path) -> str:
    """SHA-256 of the size and the first and last MiB: cheap on hour-long files, and changes when a file
    is re-encoded, truncated or replaced."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as f:
        digest.update(f.read(MIB))
        if size > MIB:
            f.seek(max(size - MIB, MIB))
            digest.update(f.read(MIB))
    return digest.hexdigest()
