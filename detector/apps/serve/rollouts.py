"""Which card each camera group runs, in the desk: the dashboard lists them; a rollback goes back to the card
before (the group's watch processes switch within seconds). Promotion stays with `streetwatch models promote`,
which reads the learnt card's report from disk: the desk never takes a path from a request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request

from detector.apps.serve.auth import Session
from detector.output.rollouts import RolloutRows

log = logging.getLogger(__name__)


def rollout_routes(app: FastAPI, rows: Callable[[], RolloutRows], api_user: Callable[..., Any],
                   check_csrf: Callable[[Request, Session, str | None], None]) -> None:
    @app.get("/api/cards")
    def groups(_: Session = Depends(api_user)) -> dict[str, Any]:
        """Each camera group's card, the one before it, who changed it, when and why."""
        return {"groups": [{k: v for k, v in r.items() if k != "report"} for r in rows().listing()]}

    @app.post("/api/cards/{group}/rollback")
    def rollback(group: str, request: Request, user: Session = Depends(api_user)) -> dict[str, Any]:
        check_csrf(request, user, None)
        try:
            row = rows().rollback(group, user.name)
        except ValueError as e:
            raise HTTPException(409, str(e)) from None
        log.info("%s rolled camera group %s back to %s", user.name, group, row["card"],
                 extra={"event": "card_rolled_back"})
        return {k: v for k, v in row.items() if k != "report"}
