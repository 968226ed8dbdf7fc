"""Open vSwitch's shaping of each port, from OVSDB: the Port's QoS row (libvirt creates a
``linux-htb`` one with queue 0) and the Interface's ingress policing. One ``ovs-vsctl`` call,
read only when a vif with ``<bandwidth>`` sits on OVS (see ``vifscope qos``).

Why OVSDB: on an OVS port libvirt shapes through OVSDB, not tc (virnetdevopenvswitch.c), and
ovs-vswitchd turns the rows into tc objects itself -- or into nothing on a userspace
datapath. What libvirt declared is compared with what it wrote there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from vifscope.model.qos import OvsQos
from vifscope.sources.jsonshape import items
from vifscope.sources.ovs import OvsError, _atoms, _map, _rows, _scalar, _tagged, _uuid

TABLES = 4  # Port, QoS, Queue, Interface
_QUERY = (
    "--columns=name,qos",
    "list",
    "Port",
    "--",
    "--columns=_uuid,type,other_config,queues",
    "list",
    "QoS",
    "--",
    "--columns=_uuid,other_config",
    "list",
    "Queue",
    "--",
    "--columns=name,ingress_policing_rate,ingress_policing_burst",
    "list",
    "Interface",
)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdecimal() else None


def _queue_refs(value: Any) -> dict[int, str]:
    """A QoS row's ``queues`` column: queue number -> Queue uuid."""
    if not _tagged(value, "map"):
        return {}
    return {int(k): _uuid(v) for k, v in items(value[1], "map") if isinstance(k, int)}


def _port_qos(qos: Mapping[str, Any] | None, queues: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """min-rate / max-rate / burst of a QoS row, queue 0's values first (libvirt writes both;
    linux-htb shapes queue 0's traffic by the queue's)."""
    if qos is None:
        return {}
    merged = _map(qos.get("other_config"))
    queue = queues.get(_queue_refs(qos.get("queues")).get(0, ""))
    if queue is not None:
        merged.update(_map(queue.get("other_config")))
    return merged


def parse_ovs_qos_tables(tables: Sequence[Mapping[str, Any]]) -> tuple[OvsQos, ...]:
    """Join the Port, QoS, Queue and Interface tables of one ``ovs-vsctl --format=json`` call.
    A port and its (single) interface share the name, as libvirt's taps do."""
    ports, qos_rows, queue_rows, ifaces = (_rows(t) for t in tables)
    qos_by_uuid = {_uuid(r["_uuid"]): r for r in qos_rows}
    queues = {_uuid(r["_uuid"]): r for r in queue_rows}
    port_qos = {str(p.get("name")): qos_by_uuid.get(_uuid(q)) for p in ports for q in _atoms(p.get("qos")) if q}
    out = []
    for iface in ifaces:
        name = str(iface.get("name", ""))
        qos = port_qos.get(name)
        conf = _port_qos(qos, queues)
        rate, burst = _scalar(iface.get("ingress_policing_rate")), _scalar(iface.get("ingress_policing_burst"))
        out.append(
            OvsQos(
                name=name,
                qos_type=str(qos.get("type")) if qos is not None else None,
                min_rate=_int(conf.get("min-rate")),
                max_rate=_int(conf.get("max-rate")),
                burst=_int(conf.get("burst")),
                ingress_policing_rate=rate if isinstance(rate, int) else 0,
                ingress_policing_burst=burst if isinstance(burst, int) else 0,
            )
        )
    return tuple(sorted(out, key=lambda q: q.name))


def parse_ovs_qos_output(stdout: str) -> tuple[OvsQos, ...]:
    try:
        tables = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        if len(tables) != TABLES:
            raise ValueError(f"expected 4 tables, got {len(tables)}")
        return parse_ovs_qos_tables(tables)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise OvsError(f"unexpected ovs-vsctl output: {exc}") from exc


def read_ovs_qos(timeout: int = 5) -> tuple[OvsQos, ...]:
    """Raises OvsError (ovs-vsctl missing, OVSDB down, odd output)."""
    exe = shutil.which("ovs-vsctl")
    if exe is None:
        raise OvsError("ovs-vsctl is not installed")
    cmd = [exe, f"--timeout={timeout}", "--format=json", *_QUERY]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 2, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OvsError(f"ovs-vsctl timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise OvsError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "ovs-vsctl failed")
    return parse_ovs_qos_output(proc.stdout)
