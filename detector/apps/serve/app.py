"""The review desk: a FastAPI app over an events store and its snapshot folder.

Server-rendered pages (Jinja2; a little plain JavaScript for the keyboard, live updates and the map),
and a JSON API documented at /docs. Files are served by event id only: the path comes from the event
row and must resolve inside the output folder, never from the request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from detector.apps.serve.auth import COOKIE, SESSION_S, Gate, Session
from detector.apps.serve.cameras import camera_routes
from detector.apps.serve.pool import pool_routes
from detector.apps.serve.rollouts import rollout_routes
from detector.apps.serve.suppressions import suppression_routes
from detector.errors import StoreError
from detector.kinds import export_classes
from detector.output.marks import MarkRows
from detector.output.pool import PoolRows
from detector.output.reviews import REASONS, Reviews
from detector.output.rollouts import RolloutRows
from detector.output.snapshots import stored_file
from detector.output.store import EventStore, open_store
from detector.output.suppressions import SuppressionRows

HERE = Path(__file__).parent
BUSY_S = 5.0  # a write waits this long for another writer before the page answers 503
RETRY_AFTER_S = 5
FILES = {"snapshot.jpg": "snapshot", "clean.jpg": "clean_frame", "crop.jpg": "crop"}


@dataclass
class Desk:
    """What the app serves: a store, the folder its snapshot paths are relative to, and who may enter."""

    target: str | Path
    out_dir: Path
    gate: Gate
    tiles: str | None = None  # a tile URL template for the map; None: markers on a blank map (offline)
    health: Any = None  # a watch process's `Health` (/healthz, /metrics, the dashboard's cameras)
    cameras: dict[str, Path] = field(default_factory=dict)  # camera id -> the file its zones are edited in
    live: Callable[[str], Any] | None = None  # a watch process's latest frame of a camera
    detect: Callable[[Any], Any] | None = None  # a watch process's model; else `model` is loaded when needed
    model: str | None = None  # the card the camera pages detect with (default: the default card)
    on_saved: Callable[[str], None] | None = None  # a camera's zones were written (watch: reload now)
    _local: threading.local = field(default_factory=threading.local)
    _loading: threading.Lock = field(default_factory=threading.Lock)

    def store(self) -> EventStore:
        """One connection per server thread (SQLite connections stay in the thread that made them)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.target, busy_s=BUSY_S)
        return store

    def reviews(self) -> Reviews:
        return Reviews(self.store(), self.out_dir)

    def detector(self, image: Any) -> Any:
        """A frame's detections for the camera pages, by the watch's model or the card loaded on first use."""
        with self._loading:
            if self.detect is None:
                from detector.model.compiled import for_runtime
                from detector.model.detector import Detector
                from detector.model.weights import DEFAULT_CARD, load_card

                self.detect = Detector(for_runtime(load_card(self.model or str(DEFAULT_CARD)))).detect_one
        return self.detect(image)


class ReviewIn(BaseModel):
    verdict: Literal["confirmed", "rejected"]
    reason: str | None = Field(None, description=f"For a rejection: one of {', '.join(REASONS)}.")


def create_app(desk: Desk) -> FastAPI:
    app = FastAPI(title="streetwatch review desk", description="Events, reviews, snapshots.",
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    _base(app, desk)

    def session(request: Request) -> Session | None:
        header = request.headers.get("authorization")
        if header and desk.gate.token is not None:  # a guessed bearer token is throttled like a login
            client = _client(request)
            _throttle(desk, client)
            if desk.gate.bearer_ok(header):
                desk.gate.succeeded(client)
                return Session(name=request.headers.get("x-reviewer", "api")[:64], csrf="", via_cookie=False)
            desk.gate.failed(client, "bearer token")
        found = desk.gate.read(request.cookies.get(COOKIE))
        if found is None and desk.gate.token is None and request.method == "GET":
            return Session(name="local", csrf="", via_cookie=False)  # an open desk: reading needs no login
        return found

    def api_user(user: Session | None = Depends(session)) -> Session:
        if user is None:
            raise HTTPException(401, "log in at /login or send Authorization: Bearer TOKEN",
                                headers={"WWW-Authenticate": "Bearer"})
        return user

    def page_user(request: Request, user: Session | None = Depends(session)) -> Session | None:
        """Who asks for a page; a stranger to a token desk goes to the login form before anything is looked
        up (not even whether an event exists)."""
        if user is None and desk.gate.token is not None:
            raise HTTPException(303, "log in", headers={"Location": f"/login?next={request.url.path}"})
        return user

    kind_names = [k.value for k in export_classes()]  # the kind filter lists every registered kind

    def page(request: Request, name: str, user: Session | None, **context: Any) -> Response:
        """A page; an open desk hands out its session (and CSRF token) here."""
        issued = None
        if user is None or not user.via_cookie:
            issued = desk.gate.issue(user.name if user else "local")
            user = desk.gate.read(issued)
        response = templates.TemplateResponse(request, name, {"user": user, "reasons": REASONS, "kinds": kind_names,
                                                              "tiles": desk.tiles, **context})
        if issued:
            _set_cookie(response, issued)
        return response

    if desk.health is not None:
        _health(app, desk)
    _pages(app, desk, page, page_user, session)
    _api(app, desk, api_user)
    camera_routes(app, desk, page, page_user, api_user, _check_csrf)
    pool_routes(app, lambda: PoolRows(desk.store()), api_user, _check_csrf)
    suppression_routes(app, lambda: SuppressionRows(desk.store()), page, page_user, api_user, _check_csrf)
    rollout_routes(app, lambda: RolloutRows(desk.store()), api_user, _check_csrf)
    _login(app, desk, templates)
    return app


def _base(app: FastAPI, desk: Desk) -> None:
    """Static files, the API docs, the host rule of an open desk, and a busy store as 503."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(StoreError)
    def busy(request: Request, error: StoreError) -> Response:
        """A store another process holds (a scan writing, a migration): try again shortly, not a traceback."""
        return PlainTextResponse(f"the events database is busy ({error}); try again in a moment\n", status_code=503,
                                 headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:  # Swagger UI from the package, not a CDN: the desk works on a closed network
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="streetwatch review desk API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/leaflet/images/marker-icon.png")

    if desk.gate.token is None:  # an open desk answers only to its own names: a rebound DNS name gets nothing
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"])


def _set_cookie(response: Response, value: str) -> None:
    response.set_cookie(COOKIE, value, max_age=SESSION_S, httponly=True, samesite="strict", path="/")


def _pages(app: FastAPI, desk: Desk, page: Callable[..., Response], session: Callable[..., Any],
           fragment_session: Callable[..., Any]) -> None:
    """The HTML pages: `session` sends strangers to the login form; fragments (fetched by the pages'
    scripts) answer them 401 instead, so a script never pastes the login form into a table."""
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def events_page(request: Request, kind: str | None = None, camera: str | None = None, status: str | None = None,
                    review: str | None = None, since: str | None = None, cursor: str | None = None,
                    user: Session | None = Depends(session)) -> Response:
        filters = {"kind": kind, "camera": camera, "status": status, "review": review, "since": since}
        events, next_cursor = _page(desk, filters, 50, cursor)
        return page(request, "events.html", user, events=events, next=next_cursor, filters=filters, cursor=cursor,
                    more=_more(filters, next_cursor))

    @app.get("/fragments/rows", response_class=HTMLResponse, include_in_schema=False)
    def rows(request: Request, kind: str | None = None, camera: str | None = None, status: str | None = None,
             review: str | None = None, since: str | None = None, cursor: str | None = None, limit: int = 50,
             user: Session | None = Depends(fragment_session)) -> Response:
        """Rows for the list's live updates (`since`: newer events) and for paging on without a reload."""
        if user is None:
            raise HTTPException(401, "log in")
        filters = {"kind": kind, "camera": camera, "status": status, "review": review, "since": since}
        events, next_cursor = _page(desk, filters, limit, cursor)
        return page(request, "_rows.html", user, events=events, next=next_cursor, more=_more(filters, next_cursor))

    @app.get("/events/{event_id}", response_class=HTMLResponse, include_in_schema=False)
    def event_page(request: Request, event_id: str, user: Session | None = Depends(session)) -> Response:
        event = _event_or_404(desk, event_id)
        newer, older = desk.reviews().neighbours(event)
        fixed = MarkRows(desk.store(), desk.out_dir).listing(event_id=event_id)
        return page(request, "event.html", user, event=event, newer=newer, older=older,
                    correction=fixed[0] if fixed else None)

    @app.get("/map", response_class=HTMLResponse, include_in_schema=False)
    def map_page(request: Request, user: Session | None = Depends(session)) -> Response:
        placed, _ = desk.reviews().page(limit=200, located=True)
        return page(request, "map.html", user, events=placed)

    @app.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request, user: Session | None = Depends(session)) -> Response:
        health = json.loads(desk.health.healthz()[0]) if desk.health else None
        pool = PoolRows(desk.store()).state()
        return page(request, "dashboard.html", user, stats=desk.reviews().stats(), health=health,
                    pool=pool if pool["cameras"] or pool["members"] else None,
                    suppressed=SuppressionRows(desk.store()).counts(), cards=RolloutRows(desk.store()).listing())


def _health(app: FastAPI, desk: Desk) -> None:
    """A watch process's /healthz and /metrics, open as they are without the desk (no credentials in them)."""
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        body, ctype, code = desk.health.healthz()
        return Response(body, status_code=code, media_type=ctype)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        return Response(desk.health.metrics(), media_type=CONTENT_TYPE_LATEST)


def _more(filters: dict[str, str | None], cursor: str | None) -> str | None:
    """The link to the next page, with the filters of this one."""
    from urllib.parse import urlencode

    return "/?" + urlencode({**{k: v for k, v in filters.items() if v}, "cursor": cursor}) if cursor else None


def _page(desk: Desk, filters: dict[str, str | None], limit: int, cursor: str | None) -> tuple[list, str | None]:
    try:
        given: dict[str, Any] = {k: v or None for k, v in filters.items()}
        return desk.reviews().page(**given, limit=limit, cursor=cursor)
    except ValueError as e:
        raise HTTPException(400, str(e)) from None


def _event_or_404(desk: Desk, event_id: str) -> dict[str, Any]:
    event = desk.reviews().event(event_id)
    if event is None:
        raise HTTPException(404, f"no event {event_id!r}")
    return event


def _api(app: FastAPI, desk: Desk, api_user: Callable[..., Any]) -> None:
    @app.get("/api/events")
    def list_events(kind: str | None = None, camera: str | None = None, status: str | None = None,
                    review: str | None = Query(None, description="confirmed, rejected or none"),
                    since: str | None = Query(None, description="ISO date or time: events first seen then or later"),
                    limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                    _: Session = Depends(api_user)) -> dict[str, Any]:
        filters = {"kind": kind, "camera": camera, "status": status, "review": review, "since": since}
        events, next_cursor = _page(desk, filters, limit, cursor)
        return {"events": events, "next": next_cursor}

    @app.get("/api/events/{event_id}")
    def get_event(event_id: str, _: Session = Depends(api_user)) -> dict[str, Any]:
        return _event_or_404(desk, event_id)

    @app.post("/api/events/{event_id}/review")
    def post_review(event_id: str, body: ReviewIn, request: Request, user: Session = Depends(api_user)) -> Any:
        _check_csrf(request, user, None)
        try:
            return desk.reviews().review(event_id, body.verdict, body.reason, user.name)
        except KeyError:
            raise HTTPException(404, f"no event {event_id!r}") from None
        except ValueError as e:
            return JSONResponse({"detail": str(e)}, status_code=422)

    @app.get("/api/events/{event_id}/{name}", response_class=FileResponse)
    def event_file(event_id: str, name: Literal["snapshot.jpg", "clean.jpg", "crop.jpg"],
                   _: Session = Depends(api_user)) -> FileResponse:
        path = stored_file(desk.out_dir, _event_or_404(desk, event_id).get(FILES[name]))
        if path is None:
            raise HTTPException(404, f"event {event_id!r} has no {name}")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})


def _check_csrf(request: Request, user: Session, form_value: str | None) -> None:
    if not user.via_cookie:
        return  # a bearer token is not sent by a browser on its own
    given = request.headers.get("x-csrf-token") or form_value or ""
    if not given or given != user.csrf:
        raise HTTPException(403, "missing or wrong CSRF token: reload the page")


def _login(app: FastAPI, desk: Desk, templates: Jinja2Templates) -> None:
    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        return templates.TemplateResponse(request, "login.html", {"next": _local_path(next), "error": None,
                                                                  "user": None})

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: str = Form(...), name: str = Form("operator"),
              next: str = Form("/")) -> Response:
        client = _client(request)
        _throttle(desk, client)
        if not desk.gate.token_ok(token):
            desk.gate.failed(client, "login")
            return templates.TemplateResponse(request, "login.html", {"next": _local_path(next), "user": None,
                                                                      "error": "wrong token"}, status_code=401)
        desk.gate.succeeded(client)
        response = RedirectResponse(_local_path(next), status_code=303)
        _set_cookie(response, desk.gate.issue(name.strip() or "operator"))
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: str = Form("")) -> Response:
        user = desk.gate.read(request.cookies.get(COOKIE))
        if user is not None:
            _check_csrf(request, user, csrf)
            desk.gate.revoke(user)  # the cookie is dead now, wherever a copy of it is
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _throttle(desk: Desk, client: str) -> None:
    """Too many wrong tokens from this client lately: 429 until its wait is over."""
    wait = desk.gate.wait_s(client)
    if wait > 0:
        raise HTTPException(429, f"too many wrong tokens: try again in {wait:.0f} s",
                            headers={"Retry-After": str(max(1, round(wait)))})


def _local_path(target: str) -> str:
    """Only paths on this site after login (no open redirect to another host)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
