"""Mutating endpoints (fix / heal / link up-down for one vif), behind a bearer token.

The token check runs after routing (so unknown paths stay 404 and wrong methods 405) but
before the body is parsed: a request without the right token learns nothing, not even
whether its body was valid. The comparison is constant-time (hmac.compare_digest of SHA-256
digests, so not even the length shows). Without
a configured token the server is read-only and these endpoints answer 403.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from vifscope.actions import Plan
from vifscope.model import HostSnapshot, VifBinding
from vifscope.serve.backend import Backend
from vifscope.serve.errors import error_json, error_responses
from vifscope.serve.live import Feed
from vifscope.serve.schema import ActionReportDoc, ErrorDoc, FixRequest, HealRequest, LinkRequest
from vifscope.serve.vifactions import (
    MAC_PATTERN,
    ActionRefused,
    find_vif,
    fix_plan,
    heal_only_plan,
    link_plan,
    require_local,
)

Mac = Annotated[str, Path(pattern=MAC_PATTERN, description="the interface's MAC, e.g. 52:54:00:12:34:56")]
Planner = Callable[[HostSnapshot, VifBinding], Plan]
BEARER = HTTPBearer(auto_error=False, description="the token in the file named by [serve] token_file")
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ActionReportDoc},
    409: {
        "model": ActionReportDoc | ErrorDoc,
        "description": "rolled back / failed (the action report), or refused (remote libvirt, duplicate MAC...)",
    },
    **error_responses(400, 401, 403, 404, 413, 503),
}


def _digest(token: str) -> bytes:
    # Compared as fixed-length digests: compare_digest's time then says nothing of the length either.
    return hashlib.sha256(token.encode()).digest()


class Auth:
    def __init__(self, token: str | None) -> None:
        self._token = _digest(token) if token else None

    def refusal(self, header: str | None) -> JSONResponse | None:
        """None when ``Authorization: Bearer <token>`` carries the configured token."""
        if self._token is None:
            return error_json(403, "this server is read-only: no API token is configured", "set [serve] token_file")
        scheme, _, given = (header or "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="vifscope"'}
        if scheme.lower() != "bearer" or not given.strip():
            resp = error_json(401, "this endpoint needs a bearer token", "send 'Authorization: Bearer TOKEN'")
        elif not hmac.compare_digest(_digest(given.strip()), self._token):
            resp = error_json(401, "wrong bearer token", "use the token from the server's token_file")
        else:
            return None
        resp.headers.update(challenge)
        return resp


def guarded_route(auth: Auth) -> type[APIRoute]:
    """An APIRoute whose handler checks the token before FastAPI reads the body."""

    class Guarded(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            inner = super().get_route_handler()

            async def handler(request: Request) -> Response:
                refused = auth.refusal(request.headers.get("authorization"))
                return refused if refused is not None else await inner(request)

            return handler

    return Guarded


def _act(b: Backend, feed: Feed, domain: str, mac: str, planner: Planner, dry_run: bool, local: bool) -> Response:
    """Blocking: a fresh snapshot, the vif, its plan, apply; then everyone sees the new state."""
    if b.actions is None:
        raise ActionRefused(403, "this server is read-only: no API token is configured")
    view = b.snapshots.get(0.0)
    binding = find_vif(view.snapshot, view.bindings, domain, mac)
    if local:
        require_local(view.snapshot)
    outcome = b.actions.run(planner(view.snapshot, binding), view.snapshot, dry_run=dry_run)
    if not dry_run:
        b.snapshots.invalidate()
        b.deep.invalidate()
        feed.poke()
    return JSONResponse(outcome.doc, status_code=outcome.status)


def write_router(b: Backend, feed: Feed) -> APIRouter:
    r = APIRouter(tags=["change"], route_class=guarded_route(Auth(b.token)), dependencies=[Security(BEARER)])

    async def run(domain: str, mac: str, planner: Planner, dry_run: bool, local: bool = True) -> Response:
        return await run_in_threadpool(_act, b, feed, domain, mac, planner, dry_run, local)

    @r.post("/api/v1/vifs/{domain}/{mac}/fix", responses=RESPONSES, operation_id="fix_vif")
    async def fix(domain: str, mac: Mac, body: FixRequest | None = None) -> Response:
        """Plan and apply the safe fixes for this vif (``doctor --fix``): verify, roll back on failure."""
        req = body or FixRequest()
        return await run(domain, mac, lambda s, v: fix_plan(s, v, link_down=req.link_down), req.dry_run)

    @r.post("/api/v1/vifs/{domain}/{mac}/heal", responses=RESPONSES, operation_id="heal_vif")
    async def heal(domain: str, mac: Mac, body: HealRequest | None = None) -> Response:
        """Re-apply the binding only (``watch --heal``): plug into the declared bridge, OVS ids, tap up."""
        req = body or HealRequest()
        return await run(domain, mac, heal_only_plan, req.dry_run)

    @r.post("/api/v1/vifs/{domain}/{mac}/link", responses=RESPONSES, operation_id="set_vif_link")
    async def link(domain: str, mac: Mac, body: LinkRequest) -> Response:
        """Set libvirt's ``<link state=>`` of this vif (``virsh domif-setlink``), verified."""
        return await run(domain, mac, lambda s, v: link_plan(s, v, body.state), body.dry_run, local=False)

    return r
