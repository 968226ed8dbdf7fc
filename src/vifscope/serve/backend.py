"""Everything the routes need, built once per app and handed to ``create_app`` (no globals).

``Backend.for_host(uri, config, token)`` wires the real sources: deadline-bounded snapshots
(a hung libvirtd costs its part of the answer, not the request) for the status views, deep
ones (sysctls, leases, filters...) for findings, the exporter for /metrics, and the actions
layer for the mutating endpoints when a token is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vifscope.exporter.checks import doctor_checks
from vifscope.exporter.collector import Exporter
from vifscope.serve.config import ServeConfig
from vifscope.serve.fleetask import FleetHub
from vifscope.serve.flows import ServeFlows
from vifscope.serve.host import Identity
from vifscope.serve.state import Snapshots
from vifscope.serve.vifactions import VifActions
from vifscope.sources.deadline import DeadlineSnapshotter


@dataclass(frozen=True)
class Backend:
    uri: str
    snapshots: Snapshots  # status, networks, topology, the live feed
    deep: Snapshots  # findings (doctor's deep snapshot)
    token: str | None = None  # None: read-only, the mutating endpoints answer 403
    actions: VifActions | None = None
    metrics: Callable[[], bytes] | None = None
    interval: float = 1.0  # live feed period; also the age a cached snapshot may have
    findings_max_age: float = 5.0  # a deep snapshot costs more: reuse it a little longer
    max_body: int = 65536
    identity: Identity = field(default_factory=lambda: Identity.resolve(None))  # GET /api/v1/host
    read_token: str | None = None  # set: the read endpoints want it (or the API token); serve.readauth
    fleet: FleetHub | None = None  # serve --fleet: this server is also the fleet's hub
    flows: ServeFlows | None = None  # serve --flows: the flow collector (serve/flows.py)

    @classmethod
    def for_host(
        cls,
        uri: str,
        config: ServeConfig,
        token: str | None,
        read_token: str | None = None,
        fleet: FleetHub | None = None,
        flows: ServeFlows | None = None,
    ) -> Backend:
        fast = DeadlineSnapshotter(uri, config.timeout, addresses=True)
        deep = DeadlineSnapshotter(uri, config.timeout, deep=True)
        exporter = Exporter(
            uri, timeout=config.timeout, audit_log=config.audit_log, checks=doctor_checks(config.doctor)
        )
        return cls(
            uri=uri,
            snapshots=Snapshots(lambda: fast.take().snapshot, doctor=config.doctor),
            deep=Snapshots(lambda: deep.take().snapshot, doctor=config.doctor),
            token=token,
            actions=VifActions(config.audit_log) if token else None,
            metrics=exporter.render_metrics,
            interval=config.interval,
            max_body=config.max_body,
            identity=Identity.resolve(config.host_id),
            read_token=read_token,
            fleet=fleet,
            flows=flows,
        )
