"""What rejections keep out, in the desk: the list of rejected objects that raise no new event, and an undo.

Each row is a rejected event (its crop shows the object), where and by whom, how many objects it has kept
out since and when last. Undo lifts it: the next sighting of the object is judged anew (a running watch
picks that up within `STORE_EVERY_S`, a scan at its next start).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from detector.apps.serve.auth import Session
from detector.output.suppressions import SuppressionRows

log = logging.getLogger(__name__)


def suppression_routes(app: FastAPI, rows: Callable[[], SuppressionRows], page: Callable[..., Response],
                       page_user: Callable[..., Any], api_user: Callable[..., Any],
                       check_csrf: Callable[[Request, Session, str | None], None]) -> None:
    @app.get("/suppressions", response_class=HTMLResponse, include_in_schema=False)
    def suppressions_page(request: Request, camera: str | None = None, lifted: bool = False,
                          user: Session | None = Depends(page_user)) -> Response:
        return page(request, "suppressions.html", user, rows=rows().listing(camera=camera, lifted=lifted),
                    camera=camera, lifted=lifted)

    @app.get("/api/suppressions")
    def list_suppressions(camera: str | None = None, lifted: bool = False,
                          _: Session = Depends(api_user)) -> dict[str, Any]:
        """Rejected objects that raise no new event (newest first); `lifted`: the undone ones too."""
        return {"suppressions": rows().listing(camera=camera, lifted=lifted)}

    @app.post("/api/suppressions/{suppression_id}/undo")
    def undo(suppression_id: str, request: Request, user: Session = Depends(api_user)) -> dict[str, str]:
        """Lift a rejection's hold: the object raises its event again when it is next seen there."""
        check_csrf(request, user, None)
        if not rows().undo(suppression_id, user.name):
            raise HTTPException(404, f"no rejection {suppression_id!r} in force")
        log.info("%s lifted the rejection %s", user.name, suppression_id,
                 extra={"event": "suppression_lifted", "event_id": suppression_id})
        return {"lifted": suppression_id}
