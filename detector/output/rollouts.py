"""Which card each camera group runs (table `card_rollouts`): promoted by `streetwatch models promote` when a
learnt card is better (`detector.learn.guard`), rolled back to the one before it, read by the watch
processes of that group, which switch without a restart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from detector.output.store import EventStore, card_rollouts_t


class RolloutRows:
    """Reads and writes the card of each camera group in one open store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def active(self, group: str) -> dict[str, Any] | None:
        """The group's row (card, previous, who and when, why), or None: it runs the card its file names."""
        rows = self.store.rows(sa.select(card_rollouts_t).where(card_rollouts_t.c.group_name == group))
        return rows[0] if rows else None

    def listing(self) -> list[dict[str, Any]]:
        return self.store.rows(sa.select(card_rollouts_t).order_by(card_rollouts_t.c.group_name))

    def promote(self, group: str, card: str, by: str, why: str, report: dict[str, Any] | None = None,
                *, default: str | None = None) -> dict[str, Any]:
        """The group runs `card` from now on; the card it ran (`default` when it never had one here) is kept
        for a rollback."""
        t = card_rollouts_t
        with self.store.transaction():
            found = self.store.db.execute(sa.select(t.c.card).where(t.c.group_name == group)).first()
            row = {"group_name": group, "card": card, "previous": found[0] if found else default,
                   "changed_at": datetime.now(UTC).isoformat(timespec="seconds"), "changed_by": by, "why": why,
                   "report": json.dumps(report, ensure_ascii=False) if report is not None else None}
            self.store.upsert_row(t, row)
        return row

    def rollback(self, group: str, by: str) -> dict[str, Any]:
        """Back to the card before, which is then the only one left (a second rollback has nowhere to go:
        going forward again is a promotion, guarded); ValueError when there is none to go back to."""
        t = card_rollouts_t
        with self.store.transaction():
            found = self.store.db.execute(sa.select(t).where(t.c.group_name == group)).mappings().first()
            if found is None or not found["previous"]:
                raise ValueError(f"camera group {group!r} has no earlier card to go back to")
            row = {"card": found["previous"], "previous": None, "changed_at": datetime.now(UTC).isoformat(
                timespec="seconds"), "changed_by": by, "why": f"rolled back from {found['card']}", "report": None}
            self.store.db.execute(sa.update(t).where(t.c.group_name == group).values(**row))
        return {"group_name": group, **row, "rolled_back_from": found["card"]}
