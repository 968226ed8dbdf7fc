"""Capture a golden-checks case from a live lab: the raw inputs only (domain/network XML,
``ip -j`` / ``tc -j`` / ``nft -j`` output, sysctls, leases, nwfilters, runtime), restricted
to one lab's objects. expected.json is never written here: it is worked out by hand.

    python -m tests.golden_checks.capture tests/golden_checks/cases/NEW --prefix vs-d-
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import libvirt

from vifscope.sources.kernel.procfs import read_device_nodes
from vifscope.sources.libvirt.runtime import QEMU_RUN, read_pid, started_at, vhost_fds

SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/core/somaxconn",
    "net/ipv4/ip_local_port_range",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_count",
)
STATES = {1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff", 6: "crashed", 7: "pmsuspended"}


def _json(cmd: list[str]) -> Any:
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout or "[]")


def _write(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _domains(conn: Any, prefix: str, out: Path) -> tuple[set[str], list[dict[str, Any]]]:
    names: set[str] = set()
    listed, runtime = [], []
    for dom in sorted(conn.listAllDomains(0), key=lambda d: d.name()):
        if not dom.name().startswith(prefix):
            continue
        xml = dom.XMLDesc(0)
        (out / "domains").mkdir(parents=True, exist_ok=True)
        (out / "domains" / f"{dom.name()}.xml").write_text(xml, encoding="utf-8")
        listed.append({"file": f"{dom.name()}.xml", "state": STATES.get(dom.state()[0], "nostate")})
        names.update(part.split("'")[1] for part in xml.split("<target dev=")[1:])
        pid = read_pid(QEMU_RUN / f"{dom.name()}.pid") if dom.isActive() else None
        start = started_at(pid) if pid else None
        runtime.append(
            {
                "name": dom.name(),
                "pid": pid,
                "started_at": start.isoformat() if start else None,
                "vhost_fds": vhost_fds(pid) if pid else None,
            }
        )
    _write(out / "domains.json", listed)
    return names, runtime


def _networks(conn: Any, prefix: str, out: Path) -> tuple[set[str], dict[str, Any], list[dict[str, Any]]]:
    names: set[str] = set()
    listed, leases, runtime = [], {}, []
    for net in sorted(conn.listAllNetworks(0), key=lambda n: n.name()):
        if not net.name().startswith(prefix):
            continue
        (out / "networks").mkdir(parents=True, exist_ok=True)
        (out / "networks" / f"{net.name()}.xml").write_text(net.XMLDesc(0), encoding="utf-8")
        raw = net.DHCPLeases() if net.isActive() else []
        leases[net.name()] = raw
        listed.append(
            {
                "file": f"{net.name()}.xml",
                "active": bool(net.isActive()),
                "autostart": bool(net.autostart()),
                "leases": len(raw),
            }
        )
        pid = read_pid(Path("/run/libvirt/network") / f"{net.name()}.pid")
        runtime.append({"name": net.name(), "dnsmasq_pid": pid, "dnsmasq_running": pid is not None})
        names.add(net.bridgeName())
    _write(out / "networks.json", listed)
    return names, leases, runtime


def _ovs(prefix: str, out: Path) -> None:
    """The three tables vifscope's OVS source reads, restricted to the lab's bridges."""
    from vifscope.sources.ovs import _QUERY

    proc = subprocess.run(["ovs-vsctl", "--format=json", *_QUERY], capture_output=True, text=True, check=True)
    bridges, ports, ifaces = (json.loads(line) for line in proc.stdout.splitlines() if line.strip())
    bridges["data"] = [row for row in bridges["data"] if str(row[0]).startswith(prefix)]
    refs = json.dumps(bridges["data"])
    ports["data"] = [row for row in ports["data"] if json.dumps(row[0]) in refs]
    refs = json.dumps(ports["data"])
    ifaces["data"] = [row for row in ifaces["data"] if json.dumps(row[0]) in refs]
    (out / "ovs.json").write_text("\n".join(json.dumps(t) for t in (bridges, ports, ifaces)) + "\n")


def capture(out: Path, prefix: str) -> None:
    conn = libvirt.openReadOnly("qemu:///system")
    taps, dom_rt = _domains(conn, prefix, out)
    _ovs(prefix, out)
    bridges, leases, net_rt = _networks(conn, prefix, out)
    links = _json(["ip", "-j", "-s", "-d", "link", "show"])
    keep = {"lo", "eth0"} | taps | bridges | {x["ifname"] for x in links if x["ifname"].startswith(prefix)}
    _write(out / "links.json", [x for x in links if x["ifname"] in keep])
    facts = out / "facts"
    _write(facts / "tc.json", [q for q in _json(["tc", "-j", "qdisc", "show"]) if q.get("dev") in keep])
    _write(facts / "neigh.json", [n for n in _json(["ip", "-j", "neigh", "show"]) if n.get("dev") in keep])
    _write(facts / "addr.json", [a for a in _json(["ip", "-j", "addr", "show"]) if a.get("ifname") in keep])
    _write(facts / "nft.json", _json(["nft", "-j", "list", "ruleset"]))
    _write(facts / "sysctl.json", {k: Path("/proc/sys", k).read_text().strip() for k in SYSCTLS})
    _write(facts / "devices.json", dataclasses.asdict(read_device_nodes()))
    _write(facts / "leases.json", leases)
    _write(facts / "runtime.json", {"domains": dom_rt, "networks": net_rt})
    (facts / "nwfilters").mkdir(parents=True, exist_ok=True)
    for f in conn.listAllNWFilters():
        (facts / "nwfilters" / f"{f.name()}.xml").write_text(f.XMLDesc(0), encoding="utf-8")
    for b in conn.listAllNWFilterBindings():
        (facts / "nwfilter-bindings").mkdir(parents=True, exist_ok=True)
        (facts / "nwfilter-bindings" / f"{b.portDev()}.xml").write_text(b.XMLDesc(0), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--prefix", default="vs-d-")
    a = parser.parse_args()
    capture(a.out, a.prefix)
