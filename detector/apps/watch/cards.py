"""The card a watch process runs, when its cameras are a camera group (`card_group`): the card the store says
the group runs (`streetwatch models promote`, `rollback`), switched to without a restart.

A promoted card is loaded (and compiled) in a thread while the cameras go on with the old one; the worker takes
it between two batches, and every camera's pipeline records it in the events it opens from then on (the open
ones carry on under their ids). A card that will not load is logged once and the running one kept.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from detector.model.weights import LoadedCard
from detector.output.rollouts import RolloutRows
from detector.output.store import EventStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ready:
    source: str  # the card as the store names it
    loaded: LoadedCard
    detector: Any


def load(source: str, runtime: str | None) -> Ready:
    from detector.model.compiled import for_runtime
    from detector.model.detector import Detector
    from detector.model.weights import load_card

    loaded = for_runtime(load_card(source), runtime)
    return Ready(source, loaded, Detector(loaded))


class CardSwitch:
    """`check()` the store now and then; `take()` a promoted card once it is loaded."""

    def __init__(self, group: str | None, running: str, runtime: str | None = None) -> None:
        self.group, self.running, self.runtime = group, running, runtime
        self.failed: str | None = None  # the card that would not load (tried again once the store names another)
        self._loading: str | None = None
        self._wanted: str | None = None
        self._ready: Ready | None = None
        self._lock = threading.Lock()

    def wanted(self, store: EventStore) -> str | None:
        """The card the store says the group runs, when it is not the one running."""
        row = RolloutRows(store).active(self.group) if self.group else None
        card = row["card"] if row else None
        return card if card is not None and card != self.running else None

    def check(self, store: EventStore) -> None:
        card = self.wanted(store)
        with self._lock:
            self._wanted = card
            if card != self.failed:
                self.failed = None  # the store names another card now: a failed one may be tried again later
            if card is None or card in (self._loading, self.failed) or (self._ready and self._ready.source == card):
                return
            self._loading = card
        threading.Thread(target=self._load, args=(card,), name="card-load", daemon=True).start()

    def _load(self, card: str) -> None:
        try:
            ready = load(card, self.runtime)
        except Exception as e:  # a missing or refused card: the running one goes on
            log.error("camera group %s: card %s does not load, the running one stays: %s", self.group, card, e,
                      extra={"event": "card_failed"})
            with self._lock:
                self.failed = card
                if self._loading == card:
                    self._loading = None
            return
        with self._lock:
            if card == self._wanted:  # not a load the store has moved on from meanwhile
                self._ready = ready
            if self._loading == card:
                self._loading = None

    def take(self) -> Ready | None:
        """The loaded card to switch to, once (None: nothing new)."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            self.running = ready.source
        return ready
