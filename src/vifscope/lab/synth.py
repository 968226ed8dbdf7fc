"""A synthetic host: N domains x K NICs in a libvirt test-driver node file, with the matching
kernel side (bridges + held taps) in a private network namespace.

``plan()`` is pure: it decides every name, every deliberate fault, and the verdict each
vif must get. ``SynthHost`` builds it for real (netns, ``ip -batch``, a tap holder) and
tears it down. vifscope then runs inside the namespace against ``test:///node.xml``.

``daemon=True`` serves the same domains from libvirtd instead: libvirtd hosts the test
driver too, and its ``test+unix:///default`` is one shared in-daemon state for as long as a
connection holds it. The domains are created there over RPC, so vifscope (and virsh in the
admin's loop) pay what they pay on a real host: a socket connect and one RPC per call,
instead of the in-process driver re-parsing a node file of thousands of domains on every open.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

# Fault kinds, and the verdict each must produce. Every ``fault_every``-th vif gets the next one.
FAULTS: dict[str, str] = {
    "detached": "detached",
    "misbound": "misbound",
    "down": "down",
    "missing": "missing",
}
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
DAEMON_URI = "test+unix:///default"
# Every held tap's device group: closing 5,000 tap fds one by one costs the kernel an RCU
# barrier each (minutes); ``ip link delete group`` unregisters them all in one batch first.
TAP_GROUP = 4242
STOCK_DOMAIN, STOCK_NETWORK = "test", "default"  # what a fresh test:///default holds


@dataclass(frozen=True)
class SynthVif:
    domain: str
    index: int
    kind: str  # "bridge" | "network"
    declared: str  # bridge or network name in the XML
    bridge: str  # the Linux bridge it resolves to
    tap: str
    fault: str  # "" or a FAULTS key, or "inactive"
    expect: str  # the verdict vifscope must give


@dataclass(frozen=True)
class SynthPlan:
    prefix: str
    bridges: tuple[str, ...]
    network: str
    vifs: tuple[SynthVif, ...]
    shutoff: frozenset[str]

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.domain for v in self.vifs))


def plan(
    domains: int, nics: int, *, bridges: int = 10, fault_every: int = 25, shutoff_every: int = 50, prefix: str = "vs-s"
) -> SynthPlan:
    """Deterministic layout: every ``fault_every``-th vif broken, every ``shutoff_every``-th domain shut off."""
    brs = tuple(f"{prefix}br{i}" for i in range(max(1, bridges)))
    faults = list(FAULTS)
    vifs: list[SynthVif] = []
    shutoff = frozenset(f"{prefix}d{d}" for d in range(domains) if d % shutoff_every == shutoff_every - 1)
    n = 0
    for d in range(domains):
        dom = f"{prefix}d{d}"
        for k in range(nics):
            bridge = brs[n % len(brs)]
            kind, declared = ("network", f"{prefix}net") if bridge == brs[0] else ("bridge", bridge)
            fault = "inactive" if dom in shutoff else ""
            if not fault and n % fault_every == fault_every - 1:
                fault = faults[(n // fault_every) % len(faults)]
            expect = "inactive" if fault == "inactive" else FAULTS.get(fault, "bound")
            vifs.append(SynthVif(dom, k, kind, declared, bridge, f"{prefix}t{n}", fault, expect))
            n += 1
    return SynthPlan(prefix, brs, f"{prefix}net", tuple(vifs), shutoff)


def _iface_xml(v: SynthVif, mac: str) -> str:
    src = f"<source network='{v.declared}'/>" if v.kind == "network" else f"<source bridge='{v.declared}'/>"
    return (
        f"<interface type='{v.kind}'><mac address='{mac}'/>{src}"
        f"<target dev='{v.tap}'/><model type='virtio'/></interface>"
    )


def domain_xmls(p: SynthPlan, *, runstate: bool = True) -> dict[str, str]:
    """Each domain's XML by name (``runstate``: shut-off ones marked the node-file way)."""
    by_dom: dict[str, list[SynthVif]] = {}
    for v in p.vifs:
        by_dom.setdefault(v.domain, []).append(v)
    out: dict[str, str] = {}
    for i, (dom, vifs) in enumerate(by_dom.items()):
        ifaces = "".join(
            _iface_xml(v, f"52:54:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:{v.index:02x}") for v in vifs
        )
        state = "<test:runstate>5</test:runstate>" if runstate and dom in p.shutoff else ""
        # A fixed UUID: the test driver invents a random one per connection otherwise, and
        # watch's event connection and its re-reads would not agree on which domain is which.
        out[dom] = (
            f"<domain type='test'><name>{dom}</name><uuid>{uuid.uuid5(uuid.NAMESPACE_DNS, dom)}</uuid>"
            f"<memory>65536</memory><vcpu>1</vcpu>"
            f"<os><type>hvm</type></os><devices>{ifaces}</devices>{state}</domain>"
        )
    return out


def network_xml(p: SynthPlan) -> str:
    return f"<network><name>{p.network}</name><bridge name='{p.bridges[0]}'/></network>"


def node_xml(p: SynthPlan) -> str:
    """The libvirt test driver's node file: domains (shut-off ones via test:runstate) + the network."""
    parts = [f"<node xmlns:test='{TEST_NS}'>", *domain_xmls(p).values(), network_xml(p), "</node>"]
    return "\n".join(parts)


def load_daemon(conn: Any, p: SynthPlan) -> None:
    """Fill libvirtd's shared test driver with the plan (only the plan: its stock objects go).

    Running domains are created transient (``createXML``), shut-off ones defined, so their
    stale target devs stay in the config the way a stopped guest's do. The state is one per
    daemon: if anything but the stock objects is there, another synthetic host holds it.
    """
    doms, nets = conn.listAllDomains(0), conn.listAllNetworks(0)
    foreign = sorted({d.name() for d in doms} - {STOCK_DOMAIN} | {n.name() for n in nets} - {STOCK_NETWORK})
    if foreign:
        raise RuntimeError(f"libvirtd's shared test driver is in use by another synthetic host ({foreign[0]}...)")
    for obj in (*doms, *nets):  # the stock objects: virDomain and virNetwork answer alike
        persistent = obj.isPersistent()  # asked first: a destroyed transient object is gone
        if obj.isActive():
            obj.destroy()
        if persistent:
            obj.undefine()
    conn.networkCreateXML(network_xml(p))
    for name, xml in domain_xmls(p, runstate=False).items():
        if name in p.shutoff:
            conn.defineXML(xml)
        else:
            conn.createXML(xml, 0)


def held_taps(p: SynthPlan) -> list[str]:
    """Taps that must exist: every vif's but the 'missing' ones (shut-off domains' too: stale)."""
    return [v.tap for v in p.vifs if v.fault != "missing"]


def wiring_batch(p: SynthPlan) -> str:
    """``ip -batch`` lines that plug the held taps the way each vif's fault says."""
    lines = [f"link add {b} type bridge stp_state 0 forward_delay 0\nlink set {b} up" for b in p.bridges]
    other = {b: p.bridges[(i + 1) % len(p.bridges)] for i, b in enumerate(p.bridges)}
    for v in p.vifs:
        if v.fault == "missing":
            continue
        if v.fault != "detached":
            master = other[v.bridge] if v.fault == "misbound" else v.bridge
            lines.append(f"link set {v.tap} master {master}")
        if v.fault != "down":
            lines.append(f"link set {v.tap} up")
        lines.append(f"link set {v.tap} group {TAP_GROUP}")
    return "\n".join(lines) + "\n"


class SynthHost:
    """Builds a plan for real in netns ``netns``; a context manager that always cleans up."""

    def __init__(self, p: SynthPlan, netns: str, workdir: Path | None = None, *, daemon: bool = False) -> None:
        if not netns.startswith("vs-"):
            raise ValueError("synthetic namespaces are named vs-*")
        self.plan, self.netns, self.daemon = p, netns, daemon
        self._tmp = tempfile.TemporaryDirectory(prefix="vs-synth-", dir=workdir)
        self.dir = Path(self._tmp.name)
        self.node_file = self.dir / "node.xml"
        self._holder: subprocess.Popen[str] | None = None
        self._made_netns = False  # close() removes only a namespace this object made
        self._conn: Any = None  # daemon mode: the connection that keeps the shared state alive

    @property
    def uri(self) -> str:
        return DAEMON_URI if self.daemon else f"test://{self.node_file}"

    def __enter__(self) -> SynthHost:
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def build(self) -> None:
        self.node_file.write_text(node_xml(self.plan))
        if self.daemon:
            import libvirt  # lazily: the file-based mode needs no libvirt-python here

            self._conn = libvirt.open(DAEMON_URI)
            load_daemon(self._conn, self.plan)
        made = subprocess.run(["ip", "netns", "add", self.netns], capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise RuntimeError(f"cannot create netns {self.netns}: {made.stderr.strip()} (another synthetic host?)")
        self._made_netns = True
        names = self.dir / "taps.txt"
        names.write_text("\n".join(held_taps(self.plan)) + "\n")
        self._holder = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, sys.executable, "-m", "vifscope.lab.tapholder", str(names)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        ready = self._holder.stdout.readline()
        if not ready.startswith("ready"):
            raise RuntimeError(f"tap holder failed to start (said {ready!r})")
        batch = self.dir / "wiring.batch"
        batch.write_text(wiring_batch(self.plan))
        subprocess.run(["ip", "-n", self.netns, "-batch", str(batch)], check=True, capture_output=True)

    def close(self) -> None:
        if self._conn is not None:  # the daemon frees the shared test state with its last connection
            self._conn.close()
            self._conn = None
        if self._holder is not None:
            delete = ["ip", "-n", self.netns, "link", "delete", "group", str(TAP_GROUP)]
            subprocess.run(delete, check=False, capture_output=True)
            if self._holder.stdin:
                self._holder.stdin.close()
            try:
                self._holder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._holder.kill()
                self._holder.wait()
            self._holder = None
        if self._made_netns:
            subprocess.run(["ip", "netns", "del", self.netns], check=False, capture_output=True)
            self._made_netns = False
        self._tmp.cleanup()
