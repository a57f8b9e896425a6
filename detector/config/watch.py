"""Watch files: the live cameras one `streetwatch watch` process runs, and how it runs them.

A watch file lists cameras; each entry is a camera file (the same keys as `zones/*.yaml`) plus the
`source` it streams from, so zones and rules read the same in `scan` and `watch`. Unknown keys are
errors, as in camera files.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from detector.config.base import Strict, read_mapping, validate_file
from detector.config.camera import CameraConfig, with_places
from detector.config.patrol import PatrolConfig, PatrolFields, check_gps_url, resolve_fences
from detector.config.sinks import SinkConfig
from detector.redact import redact

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "srt")


class LiveCamera(CameraConfig, PatrolFields):
    """A camera file with the stream it is watched from; with a `gps` feed, a camera on a patrol vehicle
    (the keys of a patrol file: mount or calibration, fences, patrol), run by the patrol logic."""

    gps: str | None = Field(None, description="The vehicle's live position: gpsd://HOST[:PORT], "
                            "nmea+tcp://HOST:PORT or nmea+udp://BIND_HOST:PORT; makes this a patrol camera.")

    source: str = Field(
        description="Stream URL (rtsp://, rtsps://, http(s):// MJPEG or HLS .m3u8) or a video file path, "
        "played at its own pace and looped (for tests and demos)."
    )

    snapshot_source: str | None = Field(
        None,
        description="The camera's main (high-resolution) stream, when `source` is its low-resolution "
        "sub-stream: detection runs on the sub-stream, snapshots are taken from the main stream. Boxes in "
        "events stay in sub-stream pixels; zones must then be given in fractions.",
    )

    @field_validator("gps")
    @classmethod
    def _check_gps(cls, value: str | None) -> str | None:
        return None if value is None else check_gps_url(value)

    @field_validator("source", "snapshot_source")
    @classmethod
    def _check_source(cls, value: str | None) -> str | None:
        """A URL must parse (host, port) now, not when its stream first opens."""
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises for a port that is not a number in range
        except ValueError as e:
            raise ValueError(f"not a usable URL or path ({e})") from None
        if parts.scheme.lower() in LIVE_SCHEMES and not parts.hostname:
            raise ValueError(f"a {parts.scheme}:// source needs a host")
        return value

    @model_validator(mode="after")
    def _check_moving(self) -> LiveCamera:
        if self.gps is not None:
            self.check_moving(self.zones)
        elif self.mount or self.calibration or self.fences:
            raise ValueError("mount, calibration and fences are for a camera on a vehicle: give its gps feed too")
        return self

    def patrol_config(self) -> PatrolConfig:
        """The patrol view of this camera, for `PatrolPipeline`."""
        fields = set(PatrolConfig.model_fields)
        return PatrolConfig.model_validate({k: v for k, v in self.__dict__.items() if k in fields})

    @model_validator(mode="after")
    def _check_sub_stream(self) -> LiveCamera:
        if self.snapshot_source is not None:
            pixel_zones = [z.id for z in self.zones if not z.is_fraction]
            if pixel_zones:
                raise ValueError(f"zones {pixel_zones} are in pixels, but with a snapshot_source the two streams "
                                 "differ in size: give their polygons as fractions of the frame")
        return self

    def main_stream(self) -> LiveCamera | None:
        """This camera read from its main stream, for snapshots; None without a snapshot_source."""
        if self.snapshot_source is None:
            return None
        return self.model_copy(update={"source": self.snapshot_source, "snapshot_source": None})

    @property
    def is_file(self) -> bool:
        return urlsplit(self.source).scheme.lower() not in LIVE_SCHEMES

    @property
    def public_source(self) -> str:
        """The source without user:password, for events, logs and /healthz."""
        return redact(self.source)


class Reconnect(Strict):
    """How a lost or unreachable source is retried: exponential backoff, capped, with jitter."""

    initial_s: float = Field(1.0, gt=0, description="Wait before the first retry.")
    max_s: float = Field(
        10.0, gt=0, description="Longest wait between retries: a camera that returns is found within about "
        "this long, at the cost of one attempt per this long while it is down."
    )
    jitter: float = Field(0.2, ge=0, le=1, description="Each wait is multiplied by 1 ± jitter at random.")
    open_timeout_s: float = Field(10.0, gt=0, description="Give up opening a source after this long.")
    read_timeout_s: float = Field(10.0, gt=0, description="Give up a read that returns nothing for this long.")


class Watchdog(Strict):
    """When a source that is open but not delivering is restarted."""

    no_frame_s: float = Field(20.0, gt=0, description="Restart a source that gave no frame for this long.")
    frozen_s: float = Field(
        60.0, gt=0, description="Restart a source whose picture has not changed at all (bit-identical) this long."
    )


class Http(Strict):
    host: str = Field("127.0.0.1", description="Address of the /healthz and /metrics endpoint.")
    port: int = Field(9108, ge=0, le=65535, description="Port of the endpoint; 0 disables it.")
    review: bool = Field(False, description="Serve the review desk (as `streetwatch serve`) on this port too, "
                         "with the cameras' health on its dashboard.")
    token_file: Path | None = Field(None, description="The review desk's token (relative to this file; or "
                                    "$STREETWATCH_REVIEW_TOKEN); required when host is not a loopback address.")
    tiles: str | None = Field(None, description="Map tile URL template for the review desk's map.")


class Pool(Strict):
    """Cameras shared out among several watch processes on one PostgreSQL store (`watch --pool`)."""

    max_cameras: int = Field(64, ge=1, description="The most cameras this process holds.")
    busy: float | None = Field(None, gt=0, le=1, description="Measured capacity: while the share of wall time "
                               "spent in inference is above this (e.g. 0.85), this process takes no further "
                               "cameras, as if its max_cameras were what it holds. Off by default: on a machine "
                               "shared with other work, cameras nobody takes stay dark.")
    balance_every_s: float = Field(30.0, ge=1, description="A process holding more than its share hands one "
                                   "camera to a process below its share at most this often (no flapping).")
    publish: bool = Field(True, description="Add this file's cameras to the pool's list (changed ones are "
                          "updated); cameras already in the pool and not in this file stay.")


class WatchConfig(Strict):
    """Everything one watch process runs: cameras, output, model and how to keep streams alive."""

    out: Path = Field(description="Folder for events.sqlite, events.jsonl and snapshots/ (relative to this file).")
    db: str | None = Field(
        None, description="Events database shared by several watch processes: postgresql://user@host/db "
        "(default: OUT/events.sqlite). Each camera is watched by one process at a time (a lease).",
    )
    lease_s: float = Field(30.0, ge=3, description="A camera's lease is renewed every third of this; a process "
                           "that died frees its cameras for another after this long.")
    model: str | None = Field(
        None, description="Model card file or bundled card name; default detector/cards/streetwatch-v4.yaml."
    )
    weights: Path | None = Field(None, description="Weights file overriding the card's.")
    fps: float = Field(2.0, gt=0, description="Frames per second sampled from each camera for detection.")
    batch: int = Field(8, ge=1, description="Most frames in one inference batch (one per camera at most).")
    static_recheck_s: float = Field(
        10.0,
        ge=0,
        description="A sampled frame unchanged since the camera's last inferred frame reuses its detections "
        "instead of running the model, which still runs at least this often per camera; 0 runs it on every frame.",
    )
    resume_within_s: float = Field(
        600.0,
        ge=0,
        description="An event left open by a stopped worker is continued after a restart if the worker "
        "was down at most this long and the object is seen again at its place; else it closes at its last sighting.",
    )
    reconnect: Reconnect = Field(default_factory=Reconnect)
    watchdog: Watchdog = Field(default_factory=Watchdog)
    http: Http = Field(default_factory=Http)
    sinks: list[SinkConfig] = Field(
        default_factory=list, description="Receivers of every camera's event messages (a camera's own `sinks` "
        "are added for that camera).",
    )
    grid: Path | None = Field(None, description="Unit grid GeoJSON for every camera without its own `grid`.")
    categories: Path | None = Field(None, description="Category dictionary for every camera without its own.")
    card_group: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="The camera "
                                   "group this process's cameras belong to: it runs the card `streetwatch models "
                                   "promote` set for the group (switching within seconds, without a restart), "
                                   "else `model`.")
    pool: Pool | None = Field(None, description="Share the cameras with other watch processes of the same "
                              "store (also `watch --pool`): the list lives in the store, each process takes "
                              "its share, a dead process's cameras are taken over when their leases expire.")
    cameras: list[LiveCamera] = Field(default_factory=list, description="The cameras; each a camera file plus "
                                      "`source` (with a pool: added to the pool's list, and may be empty).")

    @model_validator(mode="after")
    def _check_cameras(self) -> WatchConfig:
        if not self.cameras and self.pool is None:
            raise ValueError("cameras: give at least one camera (or a pool: section, to watch the store's cameras)")
        return self

    @model_validator(mode="after")
    def _check_camera_ids(self) -> WatchConfig:
        ids = [c.id for c in self.cameras]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"camera ids {twice} are used more than once; camera ids must be unique")
        return self


def load_watch(path: str | Path) -> WatchConfig:
    """Read and validate a watch file; relative paths in it are relative to the file."""
    path = Path(path)
    data = read_mapping(path, "watch file", fix="see zones/watch-example.yaml")
    config = validate_file(WatchConfig, data, path,
                           fix="see zones/watch-example.yaml and `streetwatch config schema`")
    base = path.resolve().parent
    updates: dict[str, object] = {"out": base / config.out}
    if config.http.token_file is not None:
        updates["http"] = config.http.model_copy(update={"token_file": base / config.http.token_file})
    if config.weights is not None:
        updates["weights"] = base / config.weights
    if config.model is not None and (base / config.model).exists():
        updates["model"] = str(base / config.model)
    cameras = [
        c if not c.is_file else c.model_copy(update={"source": str(base / c.source)}) for c in config.cameras
    ]
    shared = {k: v for k in ("grid", "categories") if (v := getattr(config, k)) is not None}
    cameras = [resolve_fences(with_places(c.model_copy(update={k: v for k, v in shared.items()
                                                               if getattr(c, k) is None}), base), base)
               for c in cameras]
    return config.model_copy(update={**updates, "cameras": cameras})
