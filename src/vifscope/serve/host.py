"""``GET /api/v1/host``: who this agent is, for a hub polling many (``vifscope fleet``).

The identity is fixed when the server starts: ``--host-id`` if given, else the machine-id,
else the host name (the weakest: two cloned hosts share it). The source health comes from
the same snapshot cache as /healthz, so polling it costs no extra snapshot.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from vifscope import __version__
from vifscope.report import documents as report
from vifscope.serve.state import View
from vifscope.sources.hostid import libvirt_library_version, read_host_uptime, read_machine_id


@dataclass(frozen=True)
class Identity:
    host_id: str
    host_id_source: str  # "flag" | "machine-id" | "hostname"
    hostname: str
    libvirt_version: str | None
    started: float  # time.monotonic() when the server started

    @classmethod
    def resolve(cls, flag: str | None) -> Identity:
        hostname = socket.gethostname()
        machine = read_machine_id()
        if flag:
            chosen, source = flag, "flag"
        elif machine:
            chosen, source = machine, "machine-id"
        else:
            chosen, source = hostname, "hostname"
        return cls(chosen, source, hostname, libvirt_library_version(), time.monotonic())


def host_document(ident: Identity, view: View, uri: str, mutations: bool) -> dict[str, Any]:
    failed = [e for e in view.snapshot.errors if e.source in report.REQUIRED_SOURCES]
    uptime = read_host_uptime()
    return {
        "host_id": ident.host_id,
        "host_id_source": ident.host_id_source,
        "hostname": ident.hostname,
        "version": __version__,
        "uri": uri,
        "libvirt_version": ident.libvirt_version,
        "mutations": mutations,
        "uptime_s": round(uptime, 1) if uptime is not None else None,
        "agent_uptime_s": round(time.monotonic() - ident.started, 1),
        "status": "degraded" if failed else "ok",
        "vifs": len(view.bindings),
        "source_errors": report.errors_list(view.snapshot.errors),
    }
