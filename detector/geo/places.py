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
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

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
    """Sightings of one kind that agree on a place, within one pass."""

    kind: str
    sightings: list[Sighting] = field(default_factory=list)

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
    """One pass's candidates: `add()` files a sighting under the nearest candidate of its kind."""

    def __init__(self, rule: ConfirmRule) -> None:
        self.rule = rule
        self.candidates: list[Candidate] = []

    def add(self, sighting: Sighting) -> Candidate:
        near = [(metres(c.centre, sighting.at), c) for c in self.candidates if c.kind == sighting.kind]
        near = [(d, c) for d, c in near if d <= self.rule.same_place_m]
        if near:
            candidate = min(near, key=lambda dc: dc[0])[1]
        else:
            candidate = Candidate(sighting.kind)
            self.candidates.append(candidate)
        candidate.sightings.append(sighting)
        return candidate


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
    last_pass: str
    confirmed: bool = True
    status: str = "open"
    resolution: str | None = None
    cleared_at: datetime | None = None


class Places:
    """The places known so far (from the store); `record()` a pass's candidates, `clear()` what a pass
    covered without seeing."""

    def __init__(self, places: list[Place], rule: ConfirmRule) -> None:
        self.places, self.rule = places, rule

    def near(self, kind: str, at: tuple[float, float]) -> Place | None:
        found = [(metres((p.lat, p.lon), at), p) for p in self.places if p.kind == kind and p.status == "open"]
        found = [(d, p) for d, p in found if d <= self.rule.same_place_m]
        return min(found, key=lambda dp: dp[0])[1] if found else None

    def record(self, candidate: Candidate, pass_id: str) -> Place | None:
        """The place this candidate confirms or updates; None when it is not (yet) a violation."""
        at, first, last = candidate.centre, candidate.sightings[0].t, candidate.sightings[-1].t
        place = self.near(candidate.kind, at)
        proven = candidate.confirmed(self.rule)
        if place is None:
            digest = hashlib.sha1(f"{candidate.kind}|{at[0]:.5f}|{at[1]:.5f}|{first.isoformat()}".encode())
            place = Place(id=f"{candidate.kind}-{digest.hexdigest()[:12]}", kind=candidate.kind, lat=at[0],
                          lon=at[1], first_seen=first, last_seen=last, sightings=len(candidate.sightings), passes=1,
                          last_pass=pass_id, confirmed=proven)
            self.places.append(place)
            return place if proven else None
        again = place.last_pass != pass_id
        gap_min = (first - place.last_seen).total_seconds() / 60
        place.confirmed = place.confirmed or proven or (again and gap_min >= self.rule.min_gap_min)
        place.passes += again
        place.sightings += len(candidate.sightings)
        place.last_seen, place.last_pass = max(place.last_seen, last), pass_id
        n = place.sightings  # the place settles towards the mean of everything seen
        w = len(candidate.sightings) / n
        place.lat, place.lon = place.lat + w * (at[0] - place.lat), place.lon + w * (at[1] - place.lon)
        return place if place.confirmed else None

    def clear(self, pass_id: str, covered: Callable[[float, float], bool], now: datetime) -> list[Place]:
        """Open, confirmed places this pass's view covered but did not see: the work order was done."""
        gone = [p for p in self.places if p.status == "open" and p.confirmed and p.last_pass != pass_id
                and covered(p.lat, p.lon)]
        for p in gone:
            p.status, p.resolution, p.cleared_at = "closed", "cleared", now
        return gone
