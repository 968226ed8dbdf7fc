"""The demo lab's topology as data: every object it creates, by exact name.

Pure. ``lab up`` builds what this describes and ``lab down`` removes exactly these
names (never a prefix match), so a demo lab (prefix ``vs-``) and a test lab
(prefix ``vs-t-``) can live side by side.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GuestNic:
    """One NIC of a lab guest: how it plugs in, and the guest-side address."""

    kind: str  # "bridge" | "network" | "ovs" | "direct"
    source: str  # bridge / network / lower dev name
    ip: str | None = None  # "a.b.c.d/nn" static in-guest; None with dhcp
    dhcp: bool = False
    mac: str | None = None


@dataclass(frozen=True)
class Guest:
    name: str
    nics: tuple[GuestNic, ...]
    running: bool = True
    broken: bool = False  # lab up detaches this guest's first tap on purpose


@dataclass(frozen=True)
class LabSpec:
    """Names and addresses of one lab. ``prefix`` must start with ``vs-``."""

    prefix: str = "vs-"
    net: str = "10.77"  # first two octets of every lab subnet

    def name(self, short: str) -> str:
        return f"{self.prefix}{short}"

    @property
    def bridge(self) -> str:
        return self.name("br0")

    @property
    def spare_bridge(self) -> str:
        """A second Linux bridge with no guests (tests move taps here: misbound)."""
        return self.name("br1")

    @property
    def ovs_bridge(self) -> str:
        return self.name("ovs0")

    @property
    def network(self) -> str:
        return self.name("iso")

    @property
    def network_bridge(self) -> str:
        return self.name("isobr")

    @property
    def uplink(self) -> str:
        """Host end of the veth that uplinks the Linux bridge to the 'outside' netns."""
        return self.name("up0")

    @property
    def macvtap_lower(self) -> str:
        return self.name("mvl0")

    @property
    def netns(self) -> str:
        return self.name("ext")

    def subnet(self, n: int) -> str:
        return f"{self.net}.{n}"

    def mac(self, guest_no: int, nic_no: int) -> str:
        """Deterministic locally administered MACs (52:54:00 is libvirt's OUI)."""
        octet = int(self.net.split(".")[1]) & 0xFF
        return f"52:54:00:{octet:02x}:{guest_no:02x}:{nic_no:02x}"

    def guests(self) -> tuple[Guest, ...]:
        s = self.subnet
        raw = (
            Guest(self.name("web1"), (GuestNic("bridge", self.bridge, f"{s(1)}.11/24"),)),
            Guest(self.name("db1"), (GuestNic("network", self.network, dhcp=True),)),
            Guest(self.name("ovs1"), (GuestNic("ovs", self.ovs_bridge, f"{s(3)}.11/24"),)),
            Guest(self.name("mac1"), (GuestNic("direct", self.macvtap_lower, f"{s(4)}.11/24"),)),
            Guest(
                self.name("multi"),
                (GuestNic("bridge", self.bridge, f"{s(1)}.12/24"), GuestNic("network", self.network, f"{s(2)}.12/24")),
            ),
            Guest(self.name("broken"), (GuestNic("bridge", self.bridge, f"{s(1)}.13/24"),), broken=True),
            Guest(self.name("off"), (GuestNic("bridge", self.bridge, f"{s(1)}.14/24"),), running=False),
        )
        return tuple(
            Guest(g.name, tuple(_with_mac(n, self.mac(i + 1, j)) for j, n in enumerate(g.nics)), g.running, g.broken)
            for i, g in enumerate(raw)
        )

    def guest(self, short: str) -> Guest:
        return next(g for g in self.guests() if g.name == self.name(short))

    def links(self) -> tuple[str, ...]:
        """Kernel links lab up creates (bridges and veth ends), for lab down."""
        return (self.bridge, self.spare_bridge, self.uplink, self.macvtap_lower)


def _with_mac(nic: GuestNic, mac: str) -> GuestNic:
    return GuestNic(nic.kind, nic.source, nic.ip, nic.dhcp, nic.mac or mac)


def interface_xml(nic: GuestNic) -> str:
    """The libvirt ``<interface>`` element for a lab NIC."""
    mac = f"<mac address='{nic.mac}'/>" if nic.mac else ""
    model = "<model type='virtio'/>"
    if nic.kind == "bridge":
        return f"<interface type='bridge'>{mac}<source bridge='{nic.source}'/>{model}</interface>"
    if nic.kind == "ovs":
        return (
            f"<interface type='bridge'>{mac}<source bridge='{nic.source}'/>"
            f"<virtualport type='openvswitch'/>{model}</interface>"
        )
    if nic.kind == "network":
        return f"<interface type='network'>{mac}<source network='{nic.source}'/>{model}</interface>"
    if nic.kind == "direct":
        return f"<interface type='direct'>{mac}<source dev='{nic.source}' mode='bridge'/>{model}</interface>"
    raise ValueError(f"unknown lab NIC kind {nic.kind}")


def network_xml(spec: LabSpec) -> str:
    """An isolated libvirt network (no <forward>: nothing leaves the host) with DHCP."""
    s = spec.subnet(2)
    return (
        f"<network><name>{spec.network}</name>"
        f"<bridge name='{spec.network_bridge}' stp='off' delay='0'/>"
        f"<ip address='{s}.1' netmask='255.255.255.0'>"
        f"<dhcp><range start='{s}.100' end='{s}.200'/></dhcp></ip></network>"
    )


def guest_cmdline(guest: Guest) -> str:
    """Kernel command line the lab image's init reads (vs.ipN / vs.dhcpN / vs.name)."""
    parts = [f"vs.name={guest.name}"]
    for i, nic in enumerate(guest.nics):
        if nic.ip:
            parts.append(f"vs.ip{i}={nic.ip}")
        if nic.dhcp:
            parts.append(f"vs.dhcp{i}=1")
    return " ".join(parts)
