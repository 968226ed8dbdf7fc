"""A vifscope-enforced QoS policy (``qos set --backend tc``): what the domain's metadata keeps
and what the tc backend built for it. Pure data.

Rates keep libvirt's units (average / peak kB/s, burst KiB: see model/qos.py), so a policy
reads like the ``<bandwidth>`` it stands in for. ``Created`` names exactly the kernel objects
vifscope made, so ``--clear`` (and a rollback) removes those and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from vifscope.model.qos import Bandwidth, BandwidthRate

QOS_NS = "https://vifscope.dev/xmlns/qos/1"
QOS_KEY = "vifscope"
ROOT_HANDLE = "1:"  # the handle of the root htb vifscope puts on a tap (and on its ifb)
INGRESS_HANDLE = "ffff:"
IFB_PREFIX = "vsq-"  # + the tap's ifindex: at most 15 bytes up to ifindex 99,999,999,999


@dataclass(frozen=True)
class Created:
    """The kernel objects vifscope made for one vif: a root htb on ``dev`` (guest inbound),
    an ingress qdisc on ``dev`` redirecting to the ``ifb`` device (guest outbound)."""

    dev: str
    root: bool = False
    ingress: bool = False
    ifb: str | None = None


@dataclass(frozen=True)
class VifPolicy:
    """One vif's entry in the domain's vifscope metadata."""

    mac: str
    inbound: BandwidthRate | None = None
    outbound: BandwidthRate | None = None
    backend: str = "tc"
    created: Created | None = None

    @property
    def bandwidth(self) -> Bandwidth | None:
        bw = Bandwidth(self.inbound, self.outbound)
        return bw if bw != Bandwidth() else None


@dataclass(frozen=True)
class VifSite:
    """Where a vif's shaping goes, read just before planning: its tap, the tap's ifindex, the
    kind of the tap's root qdisc (None: none reported), whether it has an ingress / clsact
    qdisc, the link names present, whether libvirt's ``<bandwidth>`` is on it, the interface
    type and whether it is an OVS port. ``ifindex`` 0: the link does not exist here."""

    domain: str
    mac: str
    dev: str
    ifindex: int
    root_kind: str | None
    has_ingress: bool
    links: frozenset[str]
    libvirt_bandwidth: bool
    vif_type: str = "ethernet"  # <interface type=>
    ovs: bool = False  # an Open vSwitch port (<virtualport type='openvswitch'/>)


def ifb_name(ifindex: int) -> str:
    return f"{IFB_PREFIX}{ifindex}"
