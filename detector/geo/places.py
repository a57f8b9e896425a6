"""From sightings on the map to violations: confirmed by parallax within a pass, or by a second pass,
and kept as places across passes (seen again: updated; covered but not seen: cleared).

A moving camera cannot time a dwell at one pixel. What it can prove is that something stands still: as
the vehicle moves, a parked bike or a pile projects to the same spot from every viewpoint, while a
walking person or a cyclist drifts. So a candidate is confirmed when `min_frames` sightings agree within
`same_place_m`, the vehicle moved at least `min_baseline_m` between them (the parallax that makes the
agreement mean something), and the sightings do not drift faster than `max_object_speed_mps` (beyond
what projection noise explains); or when it
is seen at the same place on two passes at least `min_gap_min` apart.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from detector.camera.events import Event
from detector.camera.resume import event_from_row
from detector.kinds import is_kind

log = logging.getLogger(__name__)

M_PER_DEG_LAT = 110_574.0


def _local(origin: tuple[float, float], p: tuple[float, float]) -> tuple[float, float]:
    """(east, north) metres of `p` from `origin`, both (lat, lon), a few hundred metres apart (flat)."""
    north = (p[0] - origin[0]) * M_PER_DEG_LAT
    east = (p[1] - origin[1]) * 111_320.0 * math.cos(math.radians((origin[0] + p[0]) / 2))
    return east, north


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(*_local(a, b))


@dataclass(frozen=True)
class ConfirmRule:
    min_frames: int = 3
    same_place_m: float = 6.0
    min_baseline_m: float = 8.0
    max_object_speed_mps: float = 0.8
    min_gap_min: float = 30.0
    pass_gap_s: float = 120.0
    idle_s: float = 1.5


@dataclass(frozen=True)
class Sighting:
    kind: str
    lat: float
    lon: float
    t: datetime
    vehicle: tuple[float, float]  # (lat, lon) of the vehicle when seen
    confidence: float = 1.0
    accuracy_m: float = 5.0

    @property
    def at(self) -> tuple[float, float]:
        return self.lat, self.lon


@dataclass
class Candidate:
    """Sightings of one kind that agree on a place, within one pass; `place` once it is linked to one."""

    kind: str
    sightings: list[Sighting] = field(default_factory=list)
    place: Place | None = None
    gap_min: float = 0.0  # minutes between the place's last sighting before this pass and this pass

    @property
    def centre(self) -> tuple[float, float]:
        n = len(self.sightings)
        return sum(s.lat for s in self.sightings) / n, sum(s.lon for s in self.sightings) / n

    def baseline_m(self) -> float:
        return max((metres(a.vehicle, b.vehicle) for a in self.sightings for b in self.sightings), default=0.0)

    def spread_m(self) -> float:
        c = self.centre
        return max(metres(c, s.at) for s in self.sightings)

    def drift(self) -> tuple[float, float]:
        """(speed, its standard error) in m/s of the projected place, fitted over every sighting: a standing
        object drifts by projection noise only, a walker or a cyclist at its own speed."""
        if len(self.sightings) < 3:
            return 0.0, float("inf")
        origin = self.sightings[0].at
        t = np.array([(s.t - self.sightings[0].t).total_seconds() for s in self.sightings])
        xy = np.array([_local(origin, s.at) for s in self.sightings])
        spread_t = float(((t - t.mean()) ** 2).sum())
        if spread_t <= 0:
            return 0.0, float("inf")
        slope = ((t - t.mean())[:, None] * (xy - xy.mean(0))).sum(0) / spread_t
        residual = xy - xy.mean(0) - np.outer(t - t.mean(), slope)
        sigma = math.sqrt(float((residual ** 2).sum()) / max(1, 2 * (len(t) - 2)))
        return float(np.hypot(*slope)), sigma / math.sqrt(spread_t)

    def moving(self, rule: ConfirmRule) -> bool:
        speed, error = self.drift()
        return speed > rule.max_object_speed_mps and speed > 2 * error

    def confirmed(self, rule: ConfirmRule) -> bool:
        return (len(self.sightings) >= rule.min_frames and self.baseline_m() >= rule.min_baseline_m
                and self.spread_m() <= rule.same_place_m and not self.moving(rule))


class Confirmer:
    """Candidates in view: `add()` files a sighting under the nearest candidate of its kind; `ended()`
    hands over those not seen for `idle_s` (out of view), whose evidence is then complete."""

    def __init__(self, rule: ConfirmRule) -> None:
        self.rule = rule
        self.candidates: list[Candidate] = []

    def add(self, sighting: Sighting) -> Candidate:
        return self.add_frame([sighting])[0]

    def add_frame(self, sightings: list[Sighting]) -> list[Candidate]:
        """One frame's sightings, each to a candidate of its kind whose last sighting is within
        `same_place_m`, nearest pairs first, one sighting per candidate: a rider passing a parked bike
        keeps to its own candidate. The rest start new candidates."""
        pairs = sorted((metres(c.sightings[-1].at, s.at), n, k) for n, s in enumerate(sightings)
                       for k, c in enumerate(self.candidates) if c.kind == s.kind)
        chosen: dict[int, Candidate] = {}
        taken: set[int] = set()
        for d, n, k in pairs:
            if d <= self.rule.same_place_m and n not in chosen and k not in taken:
                chosen[n] = self.candidates[k]
                taken.add(k)
        for n, sighting in enumerate(sightings):
            if n not in chosen:
                chosen[n] = Candidate(sighting.kind)
                self.candidates.append(chosen[n])
            chosen[n].sightings.append(sighting)
        return [chosen[n] for n in range(len(sightings))]

    def ended(self, now: datetime | None = None) -> list[Candidate]:
        """Candidates unseen for `idle_s` before `now` (all of them when None: the input ended)."""
        old = [c for c in self.candidates
               if now is None or (now - c.sightings[-1].t).total_seconds() > self.rule.idle_s]
        self.candidates = [c for c in self.candidates if c not in old]
        return old


@dataclass
class Place:
    """One violation at one place, across passes; `status` open or closed, `resolution` cleared when a
    later pass looked at it and it was gone. `confirmed` False: seen on one pass without parallax, waiting
    for a second pass."""

    id: str
    kind: str
    lat: float
    lon: float
    first_seen: datetime
    last_seen: datetime
    sightings: int
    passes: int
    confirmed: bool = True
    status: str = "open"
    resolution: str | None = None
    cleared_at: datetime | None = None
    event_id: str | None = None

    def to_row(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "lat": self.lat, "lon": self.lon,
                "first_seen": self.first_seen.isoformat(), "last_seen": self.last_seen.isoformat(),
                "sightings": self.sightings, "passes": self.passes, "confirmed": int(self.confirmed),
                "status": self.status, "resolution": self.resolution, "event_id": self.event_id,
                "cleared_at": self.cleared_at.isoformat() if self.cleared_at else None}

    @classmethod
    def from_row(cls, row: dict[str, object]) -> Place:
        def when(v: object) -> datetime | None:
            return datetime.fromisoformat(str(v)) if v else None

        return cls(id=str(row["id"]), kind=str(row["kind"]), lat=float(row["lat"]), lon=float(row["lon"]),  # type: ignore[arg-type]
                   first_seen=when(row["first_seen"]), last_seen=when(row["last_seen"]),  # type: ignore[arg-type]
                   sightings=int(row["sightings"]), passes=int(row["passes"]),  # type: ignore[call-overload]
                   confirmed=bool(row["confirmed"]), status=str(row["status"]),
                   resolution=row["resolution"], cleared_at=when(row["cleared_at"]),  # type: ignore[arg-type]
                   event_id=row.get("event_id"))  # type: ignore[arg-type]


class Places:
    """The places known so far (from the store). `decide()` what a candidate that left the view means (a
    new place, a known one seen again, or one waiting for a second pass); `clear()` closes a place a pass
    looked at and did not see."""

    def __init__(self, places: list[Place], rule: ConfirmRule) -> None:
        self.places, self.rule = places, rule

    def near(self, kind: str, at: tuple[float, float], within_m: float | None = None) -> Place | None:
        limit = self.rule.same_place_m if within_m is None else within_m
        found = [(metres((p.lat, p.lon), at), p) for p in self.places if p.kind == kind and p.status == "open"]
        found = [(d, p) for d, p in found if d <= limit]
        return min(found, key=lambda dp: dp[0])[1] if found else None

    def decide(self, candidate: Candidate) -> Place | None:
        """A candidate whose sightings are complete (it left the view): the place it confirms or updates,
        or None. Deciding before then would confirm a walker on the first three lucky frames. Moving
        sightings are nobody's place; unproven ones seen twice are kept, waiting for a second pass."""
        if candidate.moving(self.rule):
            return None
        place = self.near(candidate.kind, candidate.centre)
        if place is not None:
            self._link(candidate, place)
            place.confirmed = (place.confirmed or candidate.confirmed(self.rule)
                               or candidate.gap_min >= self.rule.min_gap_min)
            return place if place.confirmed else None
        if candidate.confirmed(self.rule):
            return self._new(candidate, confirmed=True)
        if len(candidate.sightings) >= 2:
            self._new(candidate, confirmed=False)
        return None

    def _new(self, candidate: Candidate, *, confirmed: bool) -> Place:
        at, first = candidate.centre, candidate.sightings[0].t
        digest = hashlib.sha1(f"{candidate.kind}|{at[0]:.5f}|{at[1]:.5f}|{first.isoformat()}".encode())
        place = Place(id=f"{candidate.kind}-{digest.hexdigest()[:12]}", kind=candidate.kind, lat=at[0], lon=at[1],
                      first_seen=first, last_seen=candidate.sightings[-1].t, sightings=len(candidate.sightings),
                      passes=1, confirmed=confirmed)
        self.places.append(place)
        candidate.place = place
        return place

    def _link(self, candidate: Candidate, place: Place) -> None:
        """A known place seen again: a new pass when it was unseen for a pass gap."""
        first = candidate.sightings[0].t
        gap_s = (first - place.last_seen).total_seconds()
        candidate.place, candidate.gap_min = place, gap_s / 60
        if gap_s >= self.rule.pass_gap_s:
            place.passes += 1
        for s in candidate.sightings:
            self._see(place, s)

    def _see(self, place: Place, sighting: Sighting) -> None:
        """The place settles towards the mean of what is seen near it; a sighting half a place away
        counts as seen but does not move it."""
        place.sightings += 1
        place.last_seen = max(place.last_seen, sighting.t)
        if metres((place.lat, place.lon), sighting.at) <= self.rule.same_place_m / 2:
            w = 1.0 / place.sightings
            place.lat += w * (sighting.lat - place.lat)
            place.lon += w * (sighting.lon - place.lon)

    def clear(self, place: Place, now: datetime) -> None:
        """A pass looked at this open, confirmed place and did not see it: the work order was done."""
        place.status, place.resolution, place.cleared_at = "closed", "cleared", now


class PlaceStore(Protocol):
    """What `stored_places` reads: the store's places and events (`detector.output.store.EventStore`)."""

    def places(self) -> list[dict[str, Any]]: ...
    def events(self, *, status: str | None = None) -> list[dict[str, Any]]: ...


def stored_places(store: PlaceStore) -> tuple[list[Place], list[Event]]:
    """The store's places and the open events of the open ones: where a pass (or a live feed) goes on from."""
    places = [Place.from_row(r) for r in store.places() if is_kind(r["kind"])]
    wanted = {p.event_id for p in places if p.status == "open" and p.event_id}
    return places, [event_from_row(e) for e in known_kinds(store.events(status="open")) if e["id"] in wanted]


def known_kinds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored events of the kinds this streetwatch knows; one of another kind (written by a newer version on a
    shared store) is left as it is, with a warning, instead of stopping the process."""
    known = [r for r in rows if is_kind(r["kind"])]
    for row in rows:
        if not is_kind(row["kind"]):
            log.warning("stored event %s has the kind %r, which this streetwatch does not know; left as it is",
                        row["id"], row["kind"])
    return known
