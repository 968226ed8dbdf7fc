"""Agent answers for the fleet's unit tests, made by the agent's own report functions (the
``serve`` contract) from small snapshots: what a real agent would send for that host."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from tests.unit.ipjson import bridge, snapshot, tap
from tests.unit.test_topology import vif
from vifscope.bind.join import bind
from vifscope.fleet.inventory import FleetHost
from vifscope.fleet.merge import FINDINGS_PATH, HOST_PATH, VIFS_PATH, host_answer
from vifscope.fleet.model import HostAnswer
from vifscope.model import DeclaredVif, DomainState, SourceError
from vifscope.report.documents import status_report
from vifscope.serve.host import Identity, host_document
from vifscope.serve.state import View
from vifscope.sources.agents import AgentReply


def guest(domain: str, mac: str, *, running: bool = True, target: str = "vnet0") -> DeclaredVif:
    state = DomainState.RUNNING if running else DomainState.SHUTOFF
    return vif(domain, "bridge", "br0", target if running else None, mac=mac, state=state)


def agent_docs(
    name: str, vifs: list[DeclaredVif], *, plugged: bool = True, errors: tuple[SourceError, ...] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(GET /api/v1/host, GET /api/v1/vifs) of a host whose running vifs are on br0 (or not)."""
    links = [bridge("br0")] + [tap(v.target, master="br0" if plugged else None) for v in vifs if v.target]
    snap = dataclasses.replace(snapshot(vifs, links), errors=errors)
    view = View(snap, bind(snap), 0.0)
    ident = Identity(f"id-{name}", "flag", name, "9.0.0", time.monotonic())
    return host_document(ident, view, "qemu:///system", False), status_report(snap, view.bindings)


def answer(
    name: str,
    vifs: list[DeclaredVif],
    *,
    segment: str | None = None,
    version: str | None = None,
    plugged: bool = True,
    addresses: dict[str, list[str]] | None = None,
    findings: list[dict[str, Any]] | None = None,
    errors: tuple[SourceError, ...] = (),
    old: bool = False,
) -> HostAnswer:
    """One answering host; ``addresses`` (MAC → guest addresses) as newer agents report them;
    ``old``: an agent from before /api/v1/host (the client's answer for its 404 is None)."""
    info, status = agent_docs(name, vifs, plugged=plugged, errors=errors)
    if version:
        info["version"] = version
    for v in status["vifs"]:
        if addresses is not None:
            v["addresses"] = [
                {"address": a, "prefix": 24, "family": "inet", "source": "lease"} for a in addresses.get(v["mac"], [])
            ]
    answers: list[tuple[str, Any]] = [(HOST_PATH, None if old else info), (VIFS_PATH, status)]
    if findings is not None:
        answers.append((FINDINGS_PATH, {"findings": findings}))
    return host_answer(fleet_host(name, segment), AgentReply(name, tuple(answers), None, 0.01))


def fleet_host(name: str, segment: str | None = None) -> FleetHost:
    labels = (("segment", segment),) if segment else ()
    return FleetHost(name, f"http://{name}.example:8777/", None, labels)


def down(name: str, error: str = "cannot connect: Connection refused") -> HostAnswer:
    return host_answer(fleet_host(name), AgentReply(name, (), error, 0.0))
