"""A patrol drive-by composed from real photos: a camera on a car moving down a straight street.

No real dashcam clip with a GPS track exists here, so the street is rendered: asphalt, kerbs, pavements
and house fronts as textured planes seen through the same pinhole model the patrol code inverts, and on
the pavement real objects cut from the photos in `../shared` (trash bags by their segmentation outlines,
parked bikes by their boxes), pasted upright at their place, scaled by distance, far ones first. Walkers
and a cyclist move. Every pass is an H.264 file whose `creation_time` is its start; the GPX track has
one fix a second with a metre of receiver noise; `truth` holds where every static object really is.

Since the street is straight and the car drives along it, what each pixel sees (which plane, where on
it) is fixed relative to the car: it is computed once, and a frame is one `cv2.remap` of a texture
atlas plus the sprites.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np

from detector.geo.places import metres
from detector.geo.track import GEOD

PX_PER_M = 20  # texture resolution
STREET_M = 200.0
RIGHT_FACADE, LEFT_FACADE, BUILDING_M = 9.0, -12.0, 14.0


@dataclass(frozen=True)
class Camera:
    """The mount of the patrol file the demo writes (front-right camera)."""

    width: int = 1920
    height: int = 1080
    height_m: float = 1.5
    pitch_deg: float = 6.0
    hfov_deg: float = 75.0
    yaw_deg: float = 35.0

    @property
    def f(self) -> float:
        return (self.width / 2) / math.tan(math.radians(self.hfov_deg) / 2)

    def project(self, forward: np.ndarray, right: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, ...]:
        """(u, v, depth) of points relative to the car on the road (metres); depth <= 0: behind."""
        yaw, p = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        ahead = forward * math.cos(yaw) + right * math.sin(yaw)
        side = -forward * math.sin(yaw) + right * math.cos(yaw)
        down = self.height_m - up
        z = ahead * math.cos(p) + down * math.sin(p)
        y = -ahead * math.sin(p) + down * math.cos(p)
        safe = np.where(z > 1e-6, z, np.nan)
        return self.width / 2 + self.f * side / safe, self.height / 2 + self.f * y / safe, z

    def rays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pixel, the ray's direction in car axes (forward, right, up)."""
        u, v = np.meshgrid(np.arange(self.width) + 0.5, np.arange(self.height) + 0.5)
        x, y = (u - self.width / 2) / self.f, (v - self.height / 2) / self.f
        p, yaw = math.radians(self.pitch_deg), math.radians(self.yaw_deg)
        down, ahead = y * math.cos(p) + math.sin(p), -y * math.sin(p) + math.cos(p)
        forward = ahead * math.cos(yaw) - x * math.sin(yaw)
        right = ahead * math.sin(yaw) + x * math.cos(yaw)
        return forward, right, -down


@dataclass
class Thing:
    """An object on the street: `s` metres along it, `r` to the right of the car's line, moving at `speed`."""

    kind: str  # garbage, bike, person, cyclist
    s: float
    r: float
    height_m: float
    sprite: np.ndarray  # BGRA
    speed: float = 0.0
    passes: tuple[int, ...] = (0, 1, 2)  # which passes it is there on

    def at(self, t: float) -> float:
        return self.s + self.speed * t


@dataclass
class Street:
    origin: tuple[float, float] = (31.2304, 121.4737)  # (lat, lon) where the drive starts
    bearing_deg: float = 60.0
    things: list[Thing] = field(default_factory=list)

    def latlon(self, s: float, r: float) -> tuple[float, float]:
        lon, lat, _ = GEOD.fwd(self.origin[1], self.origin[0], self.bearing_deg, s)
        if r:
            lon, lat, _ = GEOD.fwd(lon, lat, self.bearing_deg + 90.0, r)
        return lat, lon


def _ground_texture(rng: np.random.Generator) -> np.ndarray:
    """Top-down: rows are metres to the right (from LEFT_FACADE), columns metres along the street."""
    rows, cols = int((RIGHT_FACADE - LEFT_FACADE) * PX_PER_M), int((STREET_M + 80) * PX_PER_M)
    r = LEFT_FACADE + (np.arange(rows) + 0.5) / PX_PER_M
    tex = np.full((rows, cols, 3), 88, np.float32)
    pavement = (r > 3.7) | (r < -7.2)
    tex[pavement] = (150, 152, 155)
    tex[(np.abs(r - 3.6) < 0.12) | (np.abs(r + 7.1) < 0.12)] = (190, 190, 192)  # kerb stones
    tex += rng.normal(0, 7, (rows, 1, 1)).astype(np.float32) + rng.normal(0, 6, (rows, cols, 1)).astype(np.float32)
    s = np.arange(cols) / PX_PER_M
    dashes = ((s % 9.0) < 3.0)[None, :] & (np.abs(r + 1.8) < 0.07)[:, None]
    tex[dashes] = (215, 215, 215)
    tex[np.abs(r - 3.3) < 0.07] = (215, 215, 215)
    for row in np.where(pavement)[0][:: PX_PER_M // 2]:
        tex[row] *= 0.85
    tex[pavement[:, None] & ((np.arange(cols) % (PX_PER_M // 2)) == 0)[None, :]] *= 0.85
    return np.clip(tex, 0, 255).astype(np.uint8)


def _facade_texture(rng: np.random.Generator) -> np.ndarray:
    """Columns metres along the street, rows metres of height (top row: the roof line)."""
    rows, cols = int(BUILDING_M * PX_PER_M), int((STREET_M + 80) * PX_PER_M)
    tex = np.zeros((rows, cols, 3), np.uint8)
    x = 0
    while x < cols:
        w = int(rng.uniform(8, 20) * PX_PER_M)
        colour = rng.uniform(120, 220, 3)
        block = np.full((rows, w, 3), colour, np.float32) + rng.normal(0, 5, (rows, w, 1))
        floors = int(rng.integers(3, 5))
        top = rows - floors * 3 * PX_PER_M
        block[:max(0, top)] = (205, 190, 170)  # sky behind a lower house: pale
        for floor in range(1, floors):
            y0 = rows - (floor + 1) * 3 * PX_PER_M + PX_PER_M
            for wx in range(PX_PER_M, w - PX_PER_M, int(2.5 * PX_PER_M)):
                block[y0:y0 + int(1.4 * PX_PER_M), wx:wx + int(1.2 * PX_PER_M)] = (90, 80, 70)
        block[rows - int(3.2 * PX_PER_M):rows - int(2.6 * PX_PER_M)] = rng.uniform(40, 200, 3)  # sign band
        block[rows - int(2.6 * PX_PER_M):rows - int(0.2 * PX_PER_M), PX_PER_M // 2:w - PX_PER_M // 2] = (70, 75, 72)
        tex[:, x:x + w] = np.clip(block[:, : cols - x], 0, 255).astype(np.uint8)
        x += w
    return tex


class Renderer:
    """Frames of the street from the car at `s` metres along it."""

    def __init__(self, camera: Camera, street: Street, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.camera, self.street = camera, street
        ground, right, left = _ground_texture(rng), _facade_texture(rng), _facade_texture(rng)
        sky = np.full((8, ground.shape[1], 3), (215, 200, 180), np.uint8)
        self.atlas = np.vstack([ground, right, left, sky])
        self.offsets = np.cumsum([0, ground.shape[0], right.shape[0], left.shape[0]])
        self._map_x, self._map_y = self._surfaces()

    def _surfaces(self) -> tuple[np.ndarray, np.ndarray]:
        """For every pixel: the nearest plane its ray meets and where on it (atlas rows, metres ahead)."""
        fwd, right, up = self.camera.rays()
        h = self.camera.height_m
        with np.errstate(divide="ignore", invalid="ignore"):
            t_ground = np.where(up < -1e-6, h / -up, np.inf)
            t_right = np.where(right > 1e-6, RIGHT_FACADE / right, np.inf)
            t_left = np.where(right < -1e-6, LEFT_FACADE / right, np.inf)
        for t, edge in ((t_right, BUILDING_M), (t_left, BUILDING_M)):
            t[(h + t * up > edge) | (h + t * up < 0)] = np.inf
        t_ground[(t_ground * right > RIGHT_FACADE) | (t_ground * right < LEFT_FACADE)] = np.inf
        nearest = np.argmin(np.stack([t_ground, t_right, t_left]), axis=0)
        t = np.choose(nearest, [t_ground, t_right, t_left])
        ahead = np.where(np.isfinite(t), t * fwd, 0.0)
        height = h + np.where(np.isfinite(t), t * up, 0.0)
        rows = np.choose(nearest, [(t * right - LEFT_FACADE) * PX_PER_M + self.offsets[0],
                                   (BUILDING_M - height) * PX_PER_M + self.offsets[1],
                                   (BUILDING_M - height) * PX_PER_M + self.offsets[2]])
        rows = np.where(np.isfinite(t), rows, self.offsets[3] + 4)
        self._ahead = ahead.astype(np.float32)
        return (ahead * PX_PER_M).astype(np.float32), rows.astype(np.float32)

    def frame(self, s: float, t: float, pass_index: int) -> np.ndarray:
        image = cv2.remap(self.atlas, self._map_x + np.float32((s + 40) * PX_PER_M), self._map_y,
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        things = [th for th in self.street.things if pass_index in th.passes]
        placed = []
        for th in things:
            u, v, depth = self.camera.project(np.array([th.at(t) - s]), np.array([th.r]), np.array([0.0]))
            if depth[0] > 1.0 and np.isfinite(u[0]):
                placed.append((float(depth[0]), th, float(u[0]), float(v[0])))
        for depth, th, u, v in sorted(placed, key=lambda p: -p[0]):
            paste(image, th.sprite, u, v, self.camera.f * th.height_m / depth)
        return image


def paste(image: np.ndarray, sprite: np.ndarray, u: float, v: float, height_px: float) -> None:
    """The sprite standing on (u, v), `height_px` tall, alpha-blended; clipped at the frame's edges."""
    h = max(2, round(height_px))
    w = max(2, round(h * sprite.shape[1] / sprite.shape[0]))
    if h > 3 * image.shape[0]:
        return
    scaled = cv2.resize(sprite, (w, h), interpolation=cv2.INTER_AREA if h < sprite.shape[0] else cv2.INTER_LINEAR)
    x0, y0 = round(u - w / 2), round(v - h)
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(image.shape[1], x0 + w), min(image.shape[0], y0 + h)
    if xa >= xb or ya >= yb:
        return
    part = scaled[ya - y0:yb - y0, xa - x0:xb - x0]
    alpha = part[:, :, 3:4].astype(np.float32) / 255.0
    region = image[ya:yb, xa:xb].astype(np.float32)
    image[ya:yb, xa:xb] = (alpha * part[:, :, :3] + (1 - alpha) * region).astype(np.uint8)


def encode(path: Path, frames: list[np.ndarray] | object, fps: int, start: datetime, size: tuple[int, int]) -> None:
    with av.open(str(path), mode="w") as container:
        container.metadata["creation_time"] = start.isoformat()  # with its offset: the file source reads it
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(2 * fps), "crf": "24"}
        for image in frames:  # type: ignore[attr-defined]
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def feather(alpha: np.ndarray, px: int = 2) -> np.ndarray:
    return cv2.GaussianBlur(alpha, (2 * px + 1, 2 * px + 1), 0) if px else alpha


def _boxes(label: Path) -> list[tuple[int, list[float]]]:
    return [(int(p[0]), [float(v) for v in p[1:]]) for p in (line.split() for line in label.read_text().splitlines())
            if len(p) >= 5]


def bike_sprites(shared: Path, count: int) -> list[np.ndarray]:
    """Side views of parked bikes: labelled boxes tall in their photo, wider than high, off the edges."""
    found = []
    for label in sorted((shared / "datasets" / "bicycles" / "labels" / "val").glob("*.txt")):
        for _, (cx, cy, w, h) in _boxes(label):
            if h > 0.45 and 1.3 < w / h < 2.0 and cx - w / 2 > 0.02 and cx + w / 2 < 0.98 and cy + h / 2 < 0.98:
                image = cv2.imread(str(label.parent.parent.parent / "images" / "val" / f"{label.stem}.jpg"))
                if image is None:
                    continue
                H, W = image.shape[:2]
                x1, y1 = int((cx - w / 2) * W), int((cy - h / 2) * H)
                x2, y2 = int((cx + w / 2) * W), int((cy + h / 2) * H)
                crop = image[y1:y2, x1:x2]
                alpha = feather(np.full(crop.shape[:2], 255, np.uint8), 3)
                found.append(np.dstack([crop, alpha]))
                break
        if len(found) == count:
            break
    return found


def garbage_sprites(shared: Path, count: int) -> list[np.ndarray]:
    """Trash bags cut out along their segmentation outlines (the largest bags of their photos)."""
    found = []
    for label in sorted((shared / "datasets" / "trashbags" / "labels" / "val").glob("*.txt")):
        polygons = [np.array(v, np.float32).reshape(-1, 2) for _, v in _boxes(label) if len(v) >= 6]
        polygons = [p for p in polygons if (p[:, 0].max() - p[:, 0].min()) * (p[:, 1].max() - p[:, 1].min()) > 0.12]
        if not polygons:
            continue
        image = cv2.imread(str(label.parent.parent.parent / "images" / "val" / f"{label.stem}.jpg"))
        if image is None:
            continue
        H, W = image.shape[:2]
        mask = np.zeros((H, W), np.uint8)
        pts = [np.round(p * (W, H)).astype(np.int32) for p in polygons]
        cv2.fillPoly(mask, pts, 255)
        x, y, w, h = cv2.boundingRect(np.vstack(pts))
        found.append(np.dstack([image[y:y + h, x:x + w], feather(mask[y:y + h, x:x + w])]))
        if len(found) == count:
            break
    return found


def person_sprites(shared: Path) -> list[np.ndarray]:
    """People standing (COCO boxes taller than wide), for walkers; one carries an umbrella, which the
    composite vending rule may take for a stall: her walking must keep it from an event."""
    found = []
    for label in sorted((shared / "datasets" / "coco8" / "labels").glob("*/*.txt")):
        image = cv2.imread(str(shared / "datasets" / "coco8" / "images" / label.parent.name / f"{label.stem}.jpg"))
        if image is None:
            continue
        H, W = image.shape[:2]
        for c, (cx, cy, w, h) in _boxes(label):
            if c == 0 and h * H > 120 and h * H > 1.3 * w * W:
                x1, y1 = int((cx - w / 2) * W), int((cy - h / 2) * H)
                crop = image[y1:int((cy + h / 2) * H), x1:int((cx + w / 2) * W)]
                found.append(np.dstack([crop, feather(np.full(crop.shape[:2], 255, np.uint8), 2)]))
    return found


@dataclass(frozen=True)
class Drive:
    """The demo drive: three passes down the street, hours apart; garbage gone on the third."""

    starts: tuple[str, ...] = ("2026-12-01T09:00:00+08:00", "2026-12-01T11:00:00+08:00", "2026-12-01T15:00:00+08:00")
    speeds_kmh: tuple[float, ...] = (25.0, 30.0, 22.0)
    fps: int = 25
    end_m: float = 175.0
    start_m: float = 0.0  # where along the street each pass starts
    gps_bias_m: float = 1.5  # a receiver's error wanders slowly (multipath, atmosphere; ~0.2 m/s) ...
    gps_jitter_m: float = 0.15  # ... with a little independent noise on each fix (after its filter)


def demo_street(shared: Path) -> Street:
    """Three piles of bags and three parked bikes on the right pavement; a cyclist and walkers passing."""
    # Chosen by looking at them and at what the default card makes of each alone on this street (the demo
    # measures placing, merging and clearing, not the detector's recall): a bike parked by a wall, two
    # catalogue bikes, a rider in motion; three heaps of bags (sorted file names of the val splits).
    bikes, bags, people = bike_sprites(shared, 16), garbage_sprites(shared, 8), person_sprites(shared)
    things = [Thing("garbage", 35, 4.6, 0.9, bags[1], passes=(0, 1)),
              Thing("bike", 58, 4.8, 1.0, bikes[2]),
              Thing("garbage", 82, 5.2, 0.9, bags[2], passes=(0, 1)),
              Thing("bike", 106, 4.6, 1.0, bikes[4]),
              Thing("garbage", 130, 4.8, 0.9, bags[3], passes=(0, 1)),
              Thing("bike", 152, 5.0, 1.0, bikes[14]),
              Thing("cyclist", 25, 2.4, 1.6, bikes[7], speed=4.5)]
    things += [Thing("person", 70 + 40 * i, 6.5, 1.7, sprite, speed=(-1.4, 1.3)[i % 2])
               for i, sprite in enumerate(people[:2])]
    return Street(things=things)


DEMO_CAMERA = Camera(yaw_deg=45.0, hfov_deg=70.0)


def compose(out: Path, shared: Path, camera: Camera = DEMO_CAMERA, drive: Drive = Drive()) -> dict:
    """Writes pass-1..3.mp4, track.gpx, patrol.yaml and truth.json under `out`; returns the truth."""
    import json

    import gpxpy.gpx

    out.mkdir(parents=True, exist_ok=True)
    street = demo_street(shared)
    renderer = Renderer(camera, street)
    rng = np.random.default_rng(7)
    gpx = gpxpy.gpx.GPX()
    track = gpxpy.gpx.GPXTrack()
    gpx.tracks.append(track)
    for n, (start_text, kmh) in enumerate(zip(drive.starts, drive.speeds_kmh, strict=True)):
        start, speed = datetime.fromisoformat(start_text), kmh / 3.6
        seconds = (drive.end_m - drive.start_m) / speed
        count = int(seconds * drive.fps)
        frames = (renderer.frame(drive.start_m + speed * i / drive.fps, i / drive.fps, n) for i in range(count))
        encode(out / f"pass-{n + 1}.mp4", frames, drive.fps, start, (camera.width, camera.height))
        track.segments.append(_segment(street, speed, seconds, start, drive, rng))
    (out / "track.gpx").write_text(gpx.to_xml(), encoding="utf-8")
    objects = [{"kind": th.kind, "lat": lat, "lon": lon, "passes": [p + 1 for p in th.passes]}
               for th in street.things if th.speed == 0 for lat, lon in [street.latlon(th.s, th.r)]]
    moving = [{"kind": th.kind, "speed_mps": th.speed} for th in street.things if th.speed]
    truth = {"objects": objects, "moving": moving}
    (out / "truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    (out / "patrol.yaml").write_text(PATROL_FILE.format(**{k: getattr(camera, k) for k in
                                                           ("height_m", "pitch_deg", "hfov_deg", "yaw_deg")}))
    return truth


def _segment(street: Street, speed: float, seconds: float, start: datetime, drive: Drive,
             rng: np.random.Generator) -> object:
    """One fix a second along the car's line; the error is a bias of `gps_bias_m` that wanders (an AR(1)
    with a correlation time of 100 s) plus jitter."""
    import gpxpy.gpx

    segment = gpxpy.gpx.GPXTrackSegment()
    bias = rng.normal(0, drive.gps_bias_m, 2)
    for second in range(int(seconds) + 2):
        bias = 0.99 * bias + rng.normal(0, drive.gps_bias_m * math.sqrt(1 - 0.99 ** 2), 2)
        along, right = bias + rng.normal(0, drive.gps_jitter_m, 2)
        lat, lon = street.latlon(drive.start_m + speed * second + along, right)
        segment.points.append(gpxpy.gpx.GPXTrackPoint(lat, lon, time=start + timedelta(seconds=second)))
    return segment


PATROL_FILE = """\
# The demo patrol car's front-right camera (written by testkit/driveby.py).
camera: {{id: patrol-demo-right, timezone: Asia/Shanghai, name: demo patrol car right camera}}
vehicle: demo-car-1
mount: {{height_m: {height_m}, pitch_deg: {pitch_deg}, hfov_deg: {hfov_deg}, yaw_deg: {yaw_deg}}}
kinds: [garbage, bike, vending]
"""


MATCH_M = 10.0


def judge(events: list[dict], truth: dict) -> dict:
    """Each event to the nearest true object of its kind; what is left over is a false event."""
    objects = [dict(o, events=[]) for o in truth["objects"]]
    extra = []
    for e in events:
        at = (e["location"]["lat"], e["location"]["lon"])
        near = sorted((metres(at, (o["lat"], o["lon"])), n) for n, o in enumerate(objects) if o["kind"] == e["kind"])
        if near and near[0][0] <= MATCH_M:
            objects[near[0][1]]["events"].append({"id": e["id"], "error_m": round(near[0][0], 2),
                                                  "status": e["status"], "resolution": e.get("resolution"),
                                                  "passes": e["passes"], "sightings": e["sightings"]})
        else:
            extra.append({"id": e["id"], "kind": e["kind"], "lat": at[0], "lon": at[1]})
    errors = [ev["error_m"] for o in objects for ev in o["events"]]
    cleared_ok = all(all(ev["resolution"] == "cleared" for ev in o["events"]) for o in objects if 3 not in o["passes"])
    kept_ok = all(all(ev["status"] == "open" for ev in o["events"]) for o in objects if 3 in o["passes"])
    return {
        "objects": objects, "false_events": extra,
        "one_event_per_object": all(len(o["events"]) == 1 for o in objects),
        "garbage_cleared_on_pass_3": cleared_ok, "present_ones_stay_open": kept_ok,
        "median_error_m": round(statistics.median(errors), 2) if errors else None,
        "worst_error_m": round(max(errors), 2) if errors else None,
    }
