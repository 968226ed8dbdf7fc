"""The hub side of ``vifscope serve --fleet INVENTORY``: the fleet document for the page and
``GET /api/v1/fleet``, and one host's topology fetched through the hub.

The hub asks the agents itself (as ``vifscope fleet doctor`` does, on the event loop: the
HTTP client is async) on every request: the page polls it every few seconds. It holds each
host's last answer with the agent's ETags (``FleetHub.cache``) and asks with
``If-None-Match``: an unchanged host answers three empty 304s and its held answer is reused
(nothing transferred, nothing parsed). A host's topology comes through the hub, not
from the agent's own page: the hub holds the inventory's read tokens and CA files, which a
browser could not send (nor should it see them), and one origin needs no CORS.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

from vifscope.fleet.checks import fleet_findings
from vifscope.fleet.inventory import Inventory, InventoryError
from vifscope.fleet.merge import DOCTOR_PATHS, doctor_document, status_document
from vifscope.fleet.model import HostAnswer
from vifscope.serve.errors import ApiError
from vifscope.serve.fleetask import FleetHub, answers, targets
from vifscope.sources.agents import ask_all

TOPOLOGY_PATH = "api/v1/topology"
NOT_A_HUB = "this server is not a fleet hub"
NOT_A_HUB_HINT = "start it with vifscope serve --fleet INVENTORY"


def fleet_document(answers: Sequence[HostAnswer]) -> dict[str, Any]:
    """``fleet status --json`` with ``fleet doctor --json``'s findings beside the vifs; each
    host also counts its findings by severity (the fleet's own count for every host they name)."""
    status = status_document(answers)
    doctor = doctor_document(answers, fleet_findings(answers))
    per_host: dict[str, Counter[str]] = {a.name: Counter() for a in answers}
    for f in doctor["findings"]:
        for name in f["hosts"]:
            per_host[name][f["severity"]] += 1
    hosts = [{**h, "findings": dict(per_host[h["name"]])} for h in status["hosts"]]
    summary = {**status["summary"], "findings": doctor["summary"]}
    return {**status, "hosts": hosts, "findings": doctor["findings"], "summary": summary}


async def _inventory(hub: FleetHub) -> Inventory:
    """The hosts now (the store's table is read on every request); 503 when it cannot be."""
    from vifscope.store.engine import StoreError

    try:
        return await asyncio.to_thread(hub.hosts.read)
    except (InventoryError, StoreError) as exc:
        raise ApiError(503, f"fleet inventory: {exc}", exc.hint or "vifscope fleet hosts list --db URL") from exc


async def fleet_view(hub: FleetHub | None) -> dict[str, Any]:
    if hub is None:
        raise ApiError(404, NOT_A_HUB, NOT_A_HUB_HINT)
    inv = await _inventory(hub)
    return fleet_document(await answers(hub, inv, DOCTOR_PATHS))


async def host_topology(hub: FleetHub | None, name: str) -> Any:
    """The agent's ``/api/v1/topology`` as it sent it; 404 for a name not in the inventory,
    502 (with the agent's one-line error) when it does not answer."""
    if hub is None:
        raise ApiError(404, NOT_A_HUB, NOT_A_HUB_HINT)
    host = next((h for h in (await _inventory(hub)).hosts if h.name == name), None)
    if host is None:
        raise ApiError(404, f"no host {name!r} in the fleet inventory", "GET /api/v1/fleet lists the hosts")
    asking, early = targets(Inventory((host,)))
    replies = await ask_all(asking, [TOPOLOGY_PATH], timeout=hub.timeout, limit=1)
    reply = early.get(name) or replies[0]
    if reply.error is not None:
        raise ApiError(502, f"host {name}: {reply.error}", "GET /api/v1/fleet shows every host's state")
    return reply.answer(TOPOLOGY_PATH)
