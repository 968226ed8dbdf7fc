"""Active probe plumbing: a private namespace whose veth is plugged into a vif's bridge, and
ARP / ping from it; plus the guest-address lookups (DHCP lease, host neighbour table).

Everything the probe creates is named from its pid (netns ``vs-probe-<pid>``, host veth end
``vs-pb<pid>``) and removed by ``ProbePort.close()``, which the probe runs in ``finally`` and
on SIGTERM/SIGHUP; ``sweep_stale()`` removes what a SIGKILLed probe left behind.

Run inside the namespace, ``python -m vifscope.sources.probe_net arp DEV TARGET SENDER SECS``
does one ARP exchange (an AF_PACKET socket must be opened inside that namespace) and prints
the MACs that answered as JSON.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

NS_PREFIX = "vs-probe-"
HOST_IF_PREFIX = "vs-pb"
NS_IF = "probe0"
ETH_P_ARP = 0x0806
_STALE = re.compile(rf"^(?:{NS_PREFIX}|{HOST_IF_PREFIX})(\d+)$")


class ProbeSetupError(RuntimeError):
    """The probe could not plug itself in; the message names the command and its error."""


def _run(argv: list[str], *, timeout: float = 15, check: bool = True) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProbeSetupError(f"{argv[0]}: {exc}") from exc
    if check and proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise ProbeSetupError(f"'{' '.join(argv)}' failed: {lines[-1] if lines else proc.returncode}")
    return proc.stdout


@dataclass(frozen=True)
class ProbeNames:
    netns: str
    host_if: str
    ns_if: str = NS_IF


def probe_names(pid: int) -> ProbeNames:
    return ProbeNames(f"{NS_PREFIX}{pid}", f"{HOST_IF_PREFIX}{pid}")


@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    rtt_ms: float | None = None


@dataclass
class ProbePort:
    """A veth from namespace ``names.netns`` plugged into ``bridge`` (Linux or OVS).

    ``open()`` records every object right after creating it, so ``close()`` removes exactly
    what exists even when ``open()`` was interrupted half-way. ``close()`` is idempotent.
    """

    names: ProbeNames
    bridge: str
    ovs: bool
    made: list[str] = field(default_factory=list)

    def open(self) -> None:
        n = self.names
        _run(["ip", "netns", "add", n.netns])
        self.made.append("netns")
        _run(["ip", "link", "add", "name", n.host_if, "type", "veth", "peer", "name", n.ns_if, "netns", n.netns])
        self.made.append("veth")
        if self.ovs:
            _run(["ovs-vsctl", "--timeout=10", "add-port", self.bridge, n.host_if])
            self.made.append("ovs-port")
        else:
            _run(["ip", "link", "set", "dev", n.host_if, "master", self.bridge])
        _run(["ip", "link", "set", "dev", n.host_if, "up"])
        _run(["ip", "-n", n.netns, "link", "set", "dev", "lo", "up"])
        _run(["ip", "-n", n.netns, "link", "set", "dev", n.ns_if, "up"])

    def close(self) -> list[str]:
        """Remove what open() made, last first; returns what could not be removed."""
        n = self.names
        undo = {
            "ovs-port": ["ovs-vsctl", "--timeout=10", "--if-exists", "del-port", self.bridge, n.host_if],
            "veth": ["ip", "link", "del", "dev", n.host_if],  # gone already when the netns went first
            "netns": ["ip", "netns", "del", n.netns],
        }
        leftover: list[str] = []
        while self.made:
            what = self.made.pop()
            try:
                _run(undo[what], check=False)
            except ProbeSetupError:
                leftover.append(what)
        if n.host_if in _links() or n.netns in _namespaces():
            leftover.append(f"{n.netns}/{n.host_if}")
        return leftover

    def port_state(self) -> str:
        """Linux: the bridge port state (forwarding, learning...). OVS: "ofport N" or the error."""
        if self.ovs:
            out = _run(["ovs-vsctl", "--timeout=10", "get", "Interface", self.names.host_if, "ofport", "error"])
            ofport, _, error = out.partition("\n")
            return f"error {error.strip()}" if error.strip() not in ("", "[]") else f"ofport {ofport.strip()}"
        raw = json.loads(_run(["ip", "-j", "-d", "link", "show", "dev", self.names.host_if]) or "[{}]")[0]
        return str(((raw.get("linkinfo") or {}).get("info_slave_data") or {}).get("state", "unknown"))

    def wait_forwarding(self, seconds: float = 3.0) -> tuple[bool, str]:
        """Poll until the bridge forwards on the probe port (STP may hold it in listening/learning)."""
        deadline = time.monotonic() + seconds
        while True:
            state = self.port_state()
            ok = state == "forwarding" or (state.startswith("ofport ") and state not in ("ofport []", "ofport -1"))
            if ok or time.monotonic() >= deadline:
                return ok, state
            time.sleep(0.1)

    def add_address(self, cidr: str) -> None:
        _run(["ip", "-n", self.names.netns, "addr", "add", cidr, "dev", self.names.ns_if])

    def arp(self, target: str, sender: str, seconds: float) -> tuple[str, ...]:
        """MACs answering an ARP request for ``target`` sent from the namespace (sender 0.0.0.0: a DAD probe)."""
        argv = ["ip", "netns", "exec", self.names.netns, sys.executable, "-m", __name__]
        out = _run([*argv, "arp", self.names.ns_if, target, sender, str(seconds)], timeout=seconds + 15)
        return tuple(json.loads(out or "[]"))

    def ping(self, target: str, count: int = 3) -> PingResult:
        argv = ["ip", "netns", "exec", self.names.netns, "ping", "-n", "-c", str(count), "-i", "0.3", "-W", "2"]
        out = _run([*argv, target], check=False, timeout=count * 3 + 10)
        got = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", out)
        rtt = re.search(r"= [\d.]+/([\d.]+)/", out)
        if got is None:
            return PingResult(count, 0)
        return PingResult(int(got[1]), int(got[2]), float(rtt[1]) if rtt else None)


def _links() -> set[str]:
    out = _run(["ip", "-j", "link", "show"], check=False)
    return {str(link.get("ifname")) for link in json.loads(out or "[]")}


def _namespaces() -> set[str]:
    return {line.split()[0] for line in _run(["ip", "netns", "list"], check=False).splitlines() if line.strip()}


def _ovs_probe_ports() -> list[tuple[str, str]]:
    """(bridge, port) of OVS ports named like a probe's veth; [] when OVS is absent or down."""
    try:
        out = _run(["ovs-vsctl", "--timeout=5", "list-br"], check=False)
        return [
            (br, port)
            for br in out.split()
            for port in _run(["ovs-vsctl", "--timeout=5", "list-ports", br], check=False).split()
            if _STALE.match(port)
        ]
    except ProbeSetupError:
        return []


def _dead(name: str) -> bool:
    match = _STALE.match(name)
    return match is not None and not os.path.exists(f"/proc/{match[1]}")


def sweep_stale() -> tuple[str, ...]:
    """Remove probe objects whose probe process no longer exists (one killed with SIGKILL)."""
    removed: list[str] = []
    for br, port in _ovs_probe_ports():
        if _dead(port):
            _run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-port", br, port], check=False)
            removed.append(f"ovs port {port}")
    for link in sorted(_links()):
        if _dead(link):
            _run(["ip", "link", "del", "dev", link], check=False)
            removed.append(f"link {link}")
    for ns in sorted(_namespaces()):
        if _dead(ns):
            _run(["ip", "netns", "del", ns], check=False)
            removed.append(f"netns {ns}")
    return tuple(removed)


def lease_addresses(uri: str, network: str, mac: str) -> tuple[tuple[str, int | None], ...]:
    """(ip, prefix) of ``mac``'s DHCP leases on a libvirt network (read-only); () when none or unreadable."""
    import libvirt

    from vifscope.sources.libvirt.conn import LibvirtUnavailable, connect

    try:
        with connect(uri) as conn:
            leases = conn.networkLookupByName(network).DHCPLeases(mac)
    except (LibvirtUnavailable, libvirt.libvirtError):
        return ()
    return tuple((str(le["ipaddr"]), le.get("prefix")) for le in leases if le.get("type", 0) == 0 and le.get("ipaddr"))


def neighbour_addresses(mac: str) -> tuple[str, ...]:
    """IPv4 addresses the host's neighbour (ARP) table holds for ``mac``."""
    try:
        entries: list[dict[str, Any]] = json.loads(_run(["ip", "-j", "-4", "neigh", "show"], check=False) or "[]")
    except (ProbeSetupError, ValueError):
        return ()
    bad = {"FAILED", "INCOMPLETE"}
    return tuple(
        str(e["dst"])
        for e in entries
        if str(e.get("lladdr", "")).lower() == mac and not bad & set(e.get("state") or ())
    )


# --- the in-namespace ARP exchange (runs as python -m vifscope.sources.probe_net arp ...) ------


def _arp_request(mac: bytes, sender: str, target: str) -> bytes:
    eth = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack(
        "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton(sender), b"\0" * 6, socket.inet_aton(target)
    )
    return eth + arp


def _arp_reply_from(frame: bytes, target: str) -> str | None:
    """The sender MAC of an ARP reply from ``target``, else None."""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    op, sha, spa = struct.unpack("!H", frame[20:22])[0], frame[22:28], frame[28:32]
    if op != 2 or spa != socket.inet_aton(target):
        return None
    return ":".join(f"{b:02x}" for b in sha)


def arp_exchange(dev: str, target: str, sender: str, seconds: float) -> list[str]:
    """Send ARP requests every 0.3 s; collect every MAC that answers (more than one: a conflict)."""
    found: list[str] = []
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((dev, ETH_P_ARP))
        request = _arp_request(sock.getsockname()[4], sender, target)
        deadline, next_send = time.monotonic() + seconds, 0.0
        while (now := time.monotonic()) < deadline:
            if now >= next_send and not found:
                sock.send(request)
                next_send = now + 0.3
            wake = deadline if found else min(deadline, next_send)
            ready, _, _ = select.select([sock], [], [], max(0.0, wake - now))
            mac = _arp_reply_from(sock.recv(2048), target) if ready else None
            if mac and mac not in found:
                found.append(mac)
                deadline = min(deadline, time.monotonic() + 0.3)  # a little longer: a second owner?
    return found


def _main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[0] != "arp":
        print("usage: python -m vifscope.sources.probe_net arp DEV TARGET SENDER SECONDS", file=sys.stderr)
        return 2
    print(json.dumps(arp_exchange(argv[1], argv[2], argv[3], float(argv[4]))))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
