"""The review web app (Starlette): one static page and a small JSON/bytes API.

Every request must carry the session token (``?token=`` or the ``X-Octseg-Token`` header), else
403. Pullbacks are addressed by id only (ids come from the opened folder; anything else is 404),
so no client-supplied path is ever opened. Bad input answers 4xx with ``{"error": message}``.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from octseg.core.errors import OctsegError
from octseg.review import payload, render, save
from octseg.review.source import MANIFEST, Entry, open_folder, read_json_object
from octseg.review.state import PullbackState, load_state

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
}
MAX_STATES = 2  # pullbacks kept in memory (image + labels: ~0.6 GB for 270 x 1024 x 1024)
MAX_CACHED_FRAMES = 48
MAX_BODY = 1 << 20


class Review:
    """The opened folder, its pullbacks and the ones loaded for review."""

    def __init__(
        self,
        root: str | Path,
        data: str | Path | None = None,
        reviewer: str = "unknown",
        geometry: str | Path | None = None,
    ):
        self.layout, entries = open_folder(root, data)
        self.root = Path(root).resolve()
        self.geometry, self.geometry_source = review_geometry(self.root, geometry)
        self.entries: dict[str, Entry] = {e.id: e for e in entries}
        self.reviewer = reviewer
        self.states: OrderedDict[str, PullbackState] = OrderedDict()
        self.displays: dict[str, render.Display] = {}
        self.frames: OrderedDict[tuple, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def entry(self, pid: str) -> Entry:
        if pid not in self.entries:
            raise HTTPException(404, f"unknown pullback {pid!r}")
        return self.entries[pid]

    def state(self, pid: str) -> PullbackState:
        entry = self.entry(pid)
        with self.lock:
            if pid in self.states:
                self.states.move_to_end(pid)
                return self.states[pid]
            if entry.status in ("error", "failed"):  # failed: inference wrote no labels
                raise HTTPException(422, f"{pid}: {entry.error or entry.status}")
            try:
                st = load_state(entry, self.geometry)
                save.restore(st, self.root)
            except (OctsegError, OSError, ValueError) as exc:
                entry.status, entry.error = "error", str(exc)
                raise HTTPException(422, f"{pid}: {exc}") from None
            self.states[pid] = st
            self.displays[pid] = render.make_display(
                st.space, st.labels.shape[1:], st.ps, st.center
            )
            self._evict()
            return st

    def _evict(self) -> None:
        for pid in list(self.states)[:-MAX_STATES]:
            if self.states[pid].version == self.states[pid].saved_version:
                del self.states[pid]

    def frame_info(self, pid: str, st: PullbackState, f: int) -> dict[str, Any]:
        """The frame's :meth:`PullbackState.frame_info` plus the thickness caliper (two points
        [x, y] mm, or None) that the overlays of ``infer.py`` draw."""
        with st.lock:  # the row and the labels of one state (an edit may land meanwhile)
            info = st.frame_info(f)
            info["caliper"] = render.caliper_mm(self.displays[pid], st.labels[f], info["row"])
        return info

    def frame_bytes(self, pid: str, st: PullbackState, f: int) -> bytes:
        key = (pid, f, st.fver.get(f, 0))
        with self.lock:
            hit = self.frames.get(key)
        if hit is None:
            hit = render.frame_bytes(self.displays[pid], st.image[f], st.labels[f])
            with self.lock:
                self.frames[key] = hit
                while len(self.frames) > MAX_CACHED_FRAMES:
                    self.frames.popitem(last=False)
        return hit


# ---------------------------------------------------------------- helpers


def review_geometry(root: Path, config: str | Path | None) -> tuple[Any, str]:
    """The geometry settings that measure the reviewed labels, and where they come from: a YAML
    file given (``--geometry-config``), else those the inference run recorded in
    ``root/manifest.json`` (so the review measures as the run did), else the defaults."""
    from octseg.geometry import GeometrySettings

    if config is not None:
        return GeometrySettings.from_yaml(config), str(config)
    manifest = root / MANIFEST
    recorded = (read_json_object(manifest) or {}).get("geometry")
    if isinstance(recorded, dict):
        return GeometrySettings.from_dict(recorded, source=manifest), str(manifest)
    return GeometrySettings(), "the defaults"


def _review(request: Request) -> Review:
    return request.app.state.review


def _frame(request: Request, st: PullbackState) -> int:
    try:
        f = int(request.path_params["frame"])
    except ValueError:
        raise HTTPException(400, "frame must be an integer") from None
    if not 0 <= f < st.n_frames:
        raise HTTPException(404, f"frame {f} outside 0..{st.n_frames - 1}")
    return f


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"request body over {MAX_BODY} bytes")
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise HTTPException(400, f"body is not valid JSON ({exc})") from None


def _bad(fn, *args):
    try:
        return fn(*args)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


# ---------------------------------------------------------------- routes


def static_file(request: Request) -> Response:
    name, media = STATIC[request.url.path]
    text = resources.files("octseg.review").joinpath("static", name).read_text(encoding="utf-8")
    text = text.replace("__TOKEN__", request.app.state.token)
    return Response(text, media_type=media, headers={"Cache-Control": "no-store"})


def cohort(request: Request) -> JSONResponse:
    rv = _review(request)
    return JSONResponse(
        {
            "layout": rv.layout,
            "reviewer": rv.reviewer,
            "pullbacks": [e.public() for e in rv.entries.values()],
        }
    )


def pullback(request: Request) -> JSONResponse:
    rv = _review(request)
    pid = request.path_params["pid"]
    st = rv.state(pid)
    with st.lock:
        return JSONResponse(
            {
                "id": pid,
                "n_frames": st.n_frames,
                "space": st.space,
                "frame_spacing_mm": st.fs,
                "display": rv.displays[pid].public(),
                "rows": st.table(),
                "jumps": st.jumps(),
                "reviewed": sorted(st.reviewed),
                "edited": sorted(st.edited),
            }
        )


def frame_info(request: Request) -> JSONResponse:
    rv = _review(request)
    pid = request.path_params["pid"]
    st = rv.state(pid)
    return JSONResponse(rv.frame_info(pid, st, _frame(request, st)))


def frame_pixels(request: Request) -> Response:
    rv = _review(request)
    pid = request.path_params["pid"]
    st = rv.state(pid)
    data = rv.frame_bytes(pid, st, _frame(request, st))
    return Response(
        data, media_type="application/octet-stream", headers={"Cache-Control": "no-store"}
    )


def longitudinal(request: Request) -> Response:
    rv = _review(request)
    pid = request.path_params["pid"]
    st = rv.state(pid)
    angle = _bad(lambda: float(request.query_params.get("angle", "0")))
    if not -720 <= angle <= 720:
        raise HTTPException(400, f"angle must lie in [-720, 720] degrees, got {angle}")
    with st.lock:
        data, n, f = render.longitudinal_bytes(rv.displays[pid], st.image, st.labels, angle)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"X-Samples": str(n), "X-Frames": str(f)},
    )


async def edit(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    rv = _review(request)
    op = _bad(payload.edit, await _json(request))
    st = await run_in_threadpool(rv.state, request.path_params["pid"])
    f = _frame(request, st)

    def work() -> dict[str, Any]:
        _bad(st.apply, f, op)
        return rv.frame_info(request.path_params["pid"], st, f)

    return JSONResponse(await run_in_threadpool(work))


async def set_reviewed(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    rv = _review(request)
    value = _bad(payload.flag, await _json(request), "reviewed")
    st = await run_in_threadpool(rv.state, request.path_params["pid"])
    f = _frame(request, st)

    def work() -> dict[str, Any]:
        st.set_reviewed(f, value)
        return rv.frame_info(request.path_params["pid"], st, f)

    return JSONResponse(await run_in_threadpool(work))


def _undo_redo(request: Request, forward: bool) -> JSONResponse:
    rv, pid = _review(request), request.path_params["pid"]
    st = rv.state(pid)
    f = st.step_back(forward)
    if f is None:
        raise HTTPException(409, "nothing to redo" if forward else "nothing to undo")
    return JSONResponse(rv.frame_info(pid, st, f))


def undo(request: Request) -> JSONResponse:
    return _undo_redo(request, False)


def redo(request: Request) -> JSONResponse:
    return _undo_redo(request, True)


async def save_pullback(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    rv = _review(request)
    who = _bad(payload.reviewer, await _json(request), rv.reviewer)
    st = await run_in_threadpool(rv.state, request.path_params["pid"])
    version = st.version
    prov = await run_in_threadpool(lambda: _bad(save.save_review, st, rv.root, rv.layout, who))
    st.saved_version = version
    prov["folder"] = f"{save.REVIEWED_DIR}/{st.entry.id}"
    return JSONResponse(prov)


# ---------------------------------------------------------------- the app


class TokenGate(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        given = request.headers.get("x-octseg-token") or request.query_params.get("token") or ""
        if not secrets.compare_digest(given.encode(), request.app.state.token.encode()):
            return PlainTextResponse("forbidden: missing or wrong token", status_code=403)
        return await call_next(request)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def make_app(review: Review, token: str | None = None) -> Starlette:
    routes = [Route(path, static_file) for path in STATIC] + [
        Route("/api/cohort", cohort),
        Route("/api/pb/{pid}", pullback),
        Route("/api/pb/{pid}/frame/{frame}", frame_info),
        Route("/api/pb/{pid}/frame/{frame}/pixels", frame_pixels),
        Route("/api/pb/{pid}/long", longitudinal),
        Route("/api/pb/{pid}/frame/{frame}/edit", edit, methods=["POST"]),
        Route("/api/pb/{pid}/frame/{frame}/reviewed", set_reviewed, methods=["POST"]),
        Route("/api/pb/{pid}/undo", undo, methods=["POST"]),
        Route("/api/pb/{pid}/redo", redo, methods=["POST"]),
        Route("/api/pb/{pid}/save", save_pullback, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TokenGate)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.review = review
    app.state.token = token or secrets.token_urlsafe(24)
    return app


class Served:
    """A uvicorn server on 127.0.0.1 (a random free port) running in a background thread."""

    def __init__(self, app: Starlette):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/?token={app.state.token}"
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> Served:
        import time

        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the review server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.thread.is_alive():  # connections still open after 10 s: stop without waiting
            self.server.force_exit = True
            self.thread.join(timeout=5)
        self.sock.close()
