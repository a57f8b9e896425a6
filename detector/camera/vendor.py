"""Does one person stay beside a stall? The evidence a fixed camera has that a single photo lacks.

A parasol, a bench or a crate on a busy pavement has someone next to it in most frames, but each
passer-by only for a second or two; a vendor stands by the goods for minutes, moving a little. So the
person nearest to a vending box is recorded on every sampled frame, and the stall counts as staffed when
one spot (a person's foot point, give or take `radius` of their height) is occupied without a break
(one missed frame is bridged) for `min_stay_s` at least, in runs that together make up `min_share` of the
window's sampled frames. Whether it is the same person there is not known (no re-identification): a
queue at one spot, or a crowd so dense that the spot is never free for `min_stay_s`, counts too.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

import numpy as np


class VendorWatch:
    """The vendor sightings of one stall placement over the last `window_s` seconds of sampled frames."""

    def __init__(self, window_s: float) -> None:
        self.window = timedelta(seconds=window_s)
        self.started: datetime | None = None
        self._times: deque[datetime] = deque()
        self._feet: deque[tuple[float, float, float] | None] = deque()  # x, y, height of the person

    def covers(self) -> bool:
        """Watched for a whole window: a share of a shorter watch would not be 'most of the dwell'."""
        return self.started is not None and bool(self._times) and self._times[-1] - self.started >= self.window

    def sample(self, time: datetime) -> None:
        """A sampled frame went by: nobody seen yet; frames older than the window are dropped."""
        if self.started is None:
            self.started = time
        self._times.append(time)
        self._feet.append(None)
        while self._times and time - self._times[0] > self.window:
            self._times.popleft()
            self._feet.popleft()

    def see(self, person_xyxy: np.ndarray) -> None:
        """The person nearest to the stall in the frame last sampled (NaN: nobody near)."""
        x1, y1, x2, y2 = (float(v) for v in person_xyxy)
        if self._feet and not np.isnan(x1):
            self._feet[-1] = ((x1 + x2) / 2, y2, y2 - y1)

    def share(self, radius: float, min_stay_s: float) -> float:
        """The largest share of the window's frames in which someone stayed at one spot (within `radius`
        of their height of a sighting) in a run of at least `min_stay_s`."""
        all_feet, times = list(self._feet), list(self._times)
        seen = np.array([i for i, f in enumerate(all_feet) if f is not None], np.int64)
        if not len(seen):
            return 0.0
        feet = np.array([all_feet[i] for i in seen], np.float32)
        seconds = np.array([(times[i] - times[0]).total_seconds() for i in seen])
        spots = np.unique(np.linspace(0, len(seen) - 1, min(len(seen), MAX_SPOTS)).round().astype(int))
        best = 0
        for s in spots:  # each candidate spot: where someone stood in one of the frames
            near = np.hypot(*(feet[:, :2] - feet[s, :2]).T) <= radius * feet[s, 2]
            best = max(best, _frames_in_long_runs(seen[near], seconds[near], min_stay_s))
        return best / len(times)


MAX_SPOTS = 64  # candidate spots tried per call, evenly over the sightings: the cost stays flat with fps


def _frames_in_long_runs(frames: np.ndarray, seconds: np.ndarray, min_stay_s: float) -> int:
    """Of sorted frame indices, how many lie in runs (gaps of one missed frame bridged) lasting >= min_stay_s."""
    if not len(frames):
        return 0
    breaks = np.flatnonzero(np.diff(frames) > 2) + 1
    starts, ends = np.r_[0, breaks], np.r_[breaks, len(frames)] - 1
    long = seconds[ends] - seconds[starts] >= min_stay_s
    return int((ends - starts + 1)[long].sum())
