"""``GET /api/v1/vifs/{domain}/{mac}/flows``: one vif's talkers over the rolling window
(``serve --flows``; serve/flows.py). Behind the read guard like every read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from vifscope.model.flows import FlowGrouping
from vifscope.serve.backend import Backend
from vifscope.serve.errors import ApiError, error_responses
from vifscope.serve.flows import OFF_HINT, FlowsOff, vif_document
from vifscope.serve.flowschema import FlowsDoc
from vifscope.serve.schema import ErrorDoc
from vifscope.serve.vifactions import MAC_PATTERN, find_vif

Mac = Annotated[str, Path(pattern=MAC_PATTERN, description="the interface's MAC, e.g. 52:54:00:12:34:56")]
Top = Annotated[int, Query(ge=1, le=1000, description="talkers to list (the rest summed as other)")]
By = Annotated[FlowGrouping, Query(description="group by the peer, the port, the protocol, or one flow")]
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": FlowsDoc},
    404: {"model": ErrorDoc, "description": "no such domain or MAC; or serve runs without --flows"},
    503: {
        "model": FlowsDoc | ErrorDoc,
        "description": "no flows now: BPF cannot load here, or the collector is starting (source_errors says "
        "why); or libvirt is unavailable (an error)",
    },
    **error_responses(409),
}


def flows_answer(b: Backend, domain: str, mac: str, by: FlowGrouping, top: int) -> Response:
    """Blocking. The vif first (404 for one that does not exist), then its flows."""
    view = b.snapshots.get(b.interval)
    vif = find_vif(view.snapshot, view.bindings, domain, mac)
    if b.flows is None:  # as /metrics when not enabled: nothing here, not a server failure
        raise ApiError(404, "flows are off on this server", OFF_HINT)
    try:
        win = b.flows.read(vif.link.ifindex if vif.link is not None else None)
    except FlowsOff as exc:
        return JSONResponse(exc.doc, status_code=503)
    return JSONResponse(vif_document(win, view.bindings, vif, by, top, b.flows.window))


def flows_router(b: Backend) -> APIRouter:
    r = APIRouter(tags=["read"])

    @r.get("/api/v1/vifs/{domain}/{mac}/flows", responses=RESPONSES, operation_id="vif_flows")
    async def vif_flows(domain: str, mac: Mac, top: Top = 10, by: By = FlowGrouping.PEER) -> Response:
        """This vif's top talkers over the last ``window`` seconds, peers named
        (``vifscope flows DOMAIN --json``, one vif): needs ``serve --flows``."""
        return await run_in_threadpool(flows_answer, b, domain, mac, by, top)

    return r
