"""Keep the identity of objects between sampled frames.

Violations are static objects seen at 1-5 fps, so plain IoU association between a track's last box
and the new boxes is enough, and unlike motion-model trackers (ByteTrack, BoT-SORT) it keeps an
identity through long runs of missed detections: a track lives for as long as its kind's
`close_after_s`, not for a number of frames. `scripts/compare_trackers.py` measures both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from detector.detections import Detections
from detector.geometry import iou_matrix


@dataclass
class Track:
    id: int
    kind: str
    box: np.ndarray
    first_seen: datetime
    last_seen: datetime


class IouTracker:
    """`update()` gives every detection a `track_id`; `expire()` drops tracks unseen for too long."""

    def __init__(self, max_age_s: dict[str, float], iou_threshold: float = 0.3, first_id: int = 1) -> None:
        self.max_age_s = max_age_s
        self.iou_threshold = iou_threshold
        self.tracks: dict[int, Track] = {}
        self._next_id = first_id

    def reconfigure(self, max_age_s: dict[str, float]) -> None:
        self.max_age_s = max_age_s

    def update(self, dets: Detections, time: datetime) -> Detections:
        track_ids = np.full(len(dets), -1, dtype=np.int64)
        for kind in set(dets.kind.astype(str)):
            det_idx = np.flatnonzero(dets.kind == kind)
            tracks = [t for t in self.tracks.values() if t.kind == kind]
            ious = iou_matrix(np.array([t.box for t in tracks]).reshape(-1, 4), dets.xyxy[det_idx])
            # Greedy by IoU: enough for static objects, which barely overlap each other's tracks.
            while ious.size and ious.max() >= self.iou_threshold:
                ti, di = np.unravel_index(int(np.argmax(ious)), ious.shape)
                track = tracks[ti]
                track.box = dets.xyxy[det_idx[di]].copy()
                track.last_seen = time
                track_ids[det_idx[di]] = track.id
                ious[ti, :] = -1
                ious[:, di] = -1
            for di in det_idx:
                if track_ids[di] == -1:
                    track = Track(self._next_id, kind, dets.xyxy[di].copy(), time, time)
                    self.tracks[track.id] = track
                    track_ids[di] = track.id
                    self._next_id += 1
        return dets.with_(track_id=track_ids)

    def expire(self, time: datetime) -> list[Track]:
        """Remove and return the tracks whose object has been gone longer than its kind allows."""
        gone = [
            t for t in self.tracks.values()
            if (time - t.last_seen).total_seconds() > self.max_age_s.get(t.kind, 30.0)
        ]
        for t in gone:
            del self.tracks[t.id]
        return gone

    def clear(self) -> list[Track]:
        """Drop every track (end of input, or the camera now shows another scene)."""
        gone = list(self.tracks.values())
        self.tracks.clear()
        return gone
