"""The app factory: ``create_app(backend)`` → a FastAPI app (a new one per call, no globals).

Routes: read-only JSON under /api/v1 (the CLI's --json shapes), /healthz, /metrics, the live
feed (/api/v1/events), token-guarded POSTs, the page at / with its static assets, and the
OpenAPI spec at /openapi.json with Swagger UI at /docs served from local files (these hosts
are often offline: no CDN).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from vifscope import __version__
from vifscope.model import SourceError, VifBinding
from vifscope.serve.backend import Backend
from vifscope.serve.errors import BodyLimit, SecurityHeaders, install_handlers
from vifscope.serve.fleetroutes import fleet_page, fleet_router
from vifscope.serve.flowroutes import flows_router
from vifscope.serve.flows import FOLLOW, follow_loop
from vifscope.serve.live import Feed
from vifscope.serve.mutate import write_router
from vifscope.serve.readauth import read_guard
from vifscope.serve.routes import read_router
from vifscope.serve.state import View

DESCRIPTION = """Is every VM NIC (vif) plugged where its libvirt definition says?

Read-only endpoints return the same JSON as the CLI's `--json`. The POST endpoints change
one vif through vifscope's actions layer (plan, apply, verify on a fresh snapshot, roll back
on failure, audit log) and need `Authorization: Bearer TOKEN`."""


def static_dir() -> Path:
    return Path(str(files("vifscope.serve") / "static"))


def _feed(b: Backend) -> Feed:
    def warm(max_age: float) -> View:
        view = b.snapshots.get(max_age)
        _ = view.docs, view.shape  # computed here, in the worker thread, not on the event loop
        return view

    async def get_view(max_age: float) -> View:
        return await run_in_threadpool(warm, max_age)

    return Feed(get_view, b.interval)


def create_app(b: Backend) -> FastAPI:
    feed = _feed(b)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(feed.run(), name="vifscope-live-feed")]
        flows = b.flows
        if flows is not None:

            def seen() -> tuple[tuple[VifBinding, ...], tuple[SourceError, ...]]:
                view = b.snapshots.get(FOLLOW)  # a failed libvirt / netlink read keeps the links
                return view.bindings, view.snapshot.errors

            tasks.append(asyncio.create_task(follow_loop(flows, seen), name="vifscope-flows"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if flows is not None:
                await run_in_threadpool(flows.close)  # detach now, not at process exit

    app = FastAPIOffline(
        title="vifscope",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        static_url="/static/docs",
    )
    install_handlers(app)
    guard = [Depends(read_guard(b.read_token, b.token))]
    app.include_router(read_router(b, feed), dependencies=guard)
    app.include_router(fleet_router(b.fleet), dependencies=guard)
    app.include_router(flows_router(b), dependencies=guard)
    app.include_router(write_router(b, feed))
    page = static_dir()
    app.mount("/static", StaticFiles(directory=page), name="static")
    app.include_router(fleet_page(str(page)))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(page / "index.html", media_type="text/html; charset=utf-8")

    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, limit=b.max_body)
    return app
