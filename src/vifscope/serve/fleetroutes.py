"""Fleet endpoints of a hub (``vifscope serve --fleet INVENTORY``); on a server that is not
a hub they answer 404 with a hint (so the API's shape is the same everywhere)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, JSONResponse

from vifscope.serve.errors import error_responses
from vifscope.serve.fleetask import FleetHub
from vifscope.serve.fleethub import fleet_view, host_topology
from vifscope.serve.fleetschema import FleetDoc
from vifscope.serve.schema import TopologyDoc

HostName = Annotated[str, Path(description="the host's name in the inventory")]


def fleet_router(hub: FleetHub | None) -> APIRouter:
    r = APIRouter(tags=["fleet"])

    @r.get("/api/v1/fleet", responses={200: {"model": FleetDoc}, **error_responses(404, 503)})
    async def fleet() -> JSONResponse:
        """Every host's vifs and findings with a ``host``, each host's counts (vifs by verdict,
        findings by severity) and the hosts that did not answer (``fleet status --json`` and
        ``fleet doctor --json`` in one)."""
        return JSONResponse(await fleet_view(hub))

    @r.get(
        "/api/v1/fleet/hosts/{name}/topology",
        responses={200: {"model": TopologyDoc}, **error_responses(404, 502, 503)},
    )
    async def topology(name: HostName) -> JSONResponse:
        """One host's ``/api/v1/topology``, asked by the hub with the inventory's token."""
        return JSONResponse(await host_topology(hub, name))

    return r


def fleet_page(page_dir: str) -> APIRouter:
    r = APIRouter()

    @r.get("/fleet", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(f"{page_dir}/fleet.html", media_type="text/html; charset=utf-8")

    return r
