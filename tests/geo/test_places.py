"""Confirmation by parallax, by a second pass, and places kept, merged and cleared across passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from detector.geo.places import Confirmer, ConfirmRule, Places, Sighting, metres
from detector.geo.track import GEOD

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
ROAD = (31.2, 121.4)
RULE = ConfirmRule()


def drive(object_at, seconds: float = 3.0, speed: float = 10.0, fps: float = 2.0, noise_m: float = 1.0,
          object_speed: float = 0.0, start: datetime = T0, seed: int = 0, kind: str = "bike") -> list[Sighting]:
    """Sightings of an object (moving east at `object_speed`) from a vehicle driving east along the road."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(int(seconds * fps)):
        t = i / fps
        vlon, vlat, _ = GEOD.fwd(ROAD[1], ROAD[0], 90.0, speed * t)
        olon, olat, _ = GEOD.fwd(object_at[1], object_at[0], 90.0, object_speed * t)
        olon, olat, _ = GEOD.fwd(olon, olat, float(rng.uniform(0, 360)), float(abs(rng.normal(0, noise_m))))
        out.append(Sighting(kind, olat, olon, start + timedelta(seconds=t), (vlat, vlon)))
    return out


def beside(metres_east: float = 20.0, metres_north: float = 8.0) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(ROAD[1], ROAD[0], 90.0, metres_east)
    lon, lat, _ = GEOD.fwd(lon, lat, 0.0, metres_north)
    return lat, lon


def confirm(sightings: list[Sighting]) -> list:
    confirmer = Confirmer(RULE)
    for s in sightings:
        confirmer.add(s)
    return confirmer.candidates


def test_a_parked_bike_seen_while_driving_past_is_confirmed_by_parallax() -> None:
    [candidate] = confirm(drive(beside()))
    assert candidate.confirmed(RULE) and candidate.baseline_m() >= 20 and metres(candidate.centre, beside()) < 2


def test_a_vehicle_that_stands_still_proves_nothing() -> None:
    [candidate] = confirm(drive(beside(), speed=0.0))
    assert len(candidate.sightings) >= 3 and not candidate.confirmed(RULE)


def test_walking_people_and_riding_cyclists_are_not_confirmed() -> None:
    walker = confirm(drive(beside(), object_speed=1.4, seconds=4.0, noise_m=0.3))
    assert not any(c.confirmed(RULE) for c in walker)
    cyclist = confirm(drive(beside(), object_speed=5.0, seconds=4.0, noise_m=0.3))
    assert len(cyclist) == 1 and cyclist[0].moving(RULE) and not cyclist[0].confirmed(RULE)  # followed, drifting


def drive_past(places: Places, sightings: list[Sighting]) -> list:
    """One pass: every sighting filed, each candidate decided once it is out of view (here: at the end)."""
    confirmer = Confirmer(RULE)
    for s in sightings:
        confirmer.add(s)
    return [place for c in confirmer.ended() if (place := places.decide(c)) is not None]


def test_two_passes_confirm_what_one_glimpse_could_not_and_places_merge() -> None:
    places = Places([], RULE)
    assert drive_past(places, drive(beside(), seconds=1.0)) == []  # two frames, 10 m of baseline: too few
    assert len(places.places) == 1 and not places.places[0].confirmed  # kept, waiting for a second pass
    [place] = drive_past(places, drive(beside(), seconds=1.0, start=T0 + timedelta(minutes=40), seed=1))
    assert place.passes == 2 and place.sightings == 4 and place.confirmed
    assert drive_past(places, drive(beside(), start=T0 + timedelta(minutes=80), seed=2)) == [place]
    assert place.passes == 3 and len(places.places) == 1
    assert metres((place.lat, place.lon), beside()) < 2


def test_a_second_glimpse_soon_after_is_the_same_pass_and_proves_nothing() -> None:
    places = Places([], RULE)
    drive_past(places, drive(beside(), seconds=1.0))
    assert drive_past(places, drive(beside(), seconds=1.0, start=T0 + timedelta(minutes=5), seed=1)) == []
    assert places.places[0].passes == 2 and not places.places[0].confirmed  # 5 min: < min_gap_min


def test_walkers_are_not_kept_for_a_second_pass_either() -> None:
    places = Places([], RULE)
    drive_past(places, drive(beside(), object_speed=1.4, seconds=4.0, noise_m=0.3))
    assert places.places == []


def test_clearing_closes_a_place_with_its_resolution() -> None:
    places = Places([], RULE)
    [garbage] = drive_past(places, drive(beside(), kind="garbage"))
    places.clear(garbage, T0 + timedelta(hours=2))
    assert garbage.status == "closed" and garbage.resolution == "cleared"
    assert places.near("garbage", beside()) is None  # a closed place takes no new sightings
    [again] = drive_past(places, drive(beside(), kind="garbage", start=T0 + timedelta(hours=3), seed=4))
    assert again is not garbage and again.passes == 1  # dumped again: a new violation


def test_a_candidate_is_decided_on_all_its_sightings_not_the_first_lucky_ones() -> None:
    """Three frames of a walker can agree by chance; the whole drive past shows the drift."""
    lucky = 0
    for seed in range(100):
        places = Places([], RULE)
        lucky += bool(drive_past(places, drive(beside(), object_speed=1.4, seconds=4.0, fps=3.0, speed=7.0,
                                                seed=seed)))
    assert lucky <= 3


def test_a_rider_passing_a_parked_bike_keeps_to_its_own_candidate() -> None:
    """Both are seen in the same frames: each frame's sightings go to candidates nearest pair first."""
    confirmer = Confirmer(RULE)
    parked = drive(beside(30.0, 8.0), seconds=4.0, noise_m=0.3)
    rider = drive(beside(18.0, 7.0), seconds=4.0, noise_m=0.3, object_speed=4.0, seed=1)
    for a, b in zip(rider, parked, strict=True):
        confirmer.add_frame([a, b])
    standing = [c for c in confirmer.candidates if c.confirmed(RULE)]
    assert len(standing) == 1 and metres(standing[0].centre, beside(30.0, 8.0)) < 1.5
    assert all(c.moving(RULE) or len(c.sightings) < 3 for c in confirmer.candidates if c not in standing)


def test_the_confirmer_hands_over_candidates_out_of_view() -> None:
    confirmer = Confirmer(RULE)
    for s in drive(beside()):
        confirmer.add(s)
    last = confirmer.candidates[0].sightings[-1].t
    assert confirmer.ended(last + timedelta(seconds=1.0)) == []
    assert len(confirmer.ended(last + timedelta(seconds=2.0))) == 1 and confirmer.candidates == []


def test_over_many_noisy_drives_parked_things_confirm_and_walkers_do_not() -> None:
    """1 m of projection noise per frame, 3-4 s in view at 2 fps: a rate, not a single lucky draw."""
    parked = sum(any(c.confirmed(RULE) for c in confirm(drive(beside(), seed=s))) for s in range(100))
    walkers = sum(any(c.confirmed(RULE) for c in confirm(drive(beside(), object_speed=1.4, seconds=4.0, seed=s)))
                  for s in range(100))
    assert parked >= 90 and walkers <= 2
