"""The join and its verdict: where a vif should be plugged (``Expectation``), what it is
plugged to (``VifBinding``), the verdict (``VifStatus``) and every fault found (``Problem``).
Pure, like the rest of ``model``: ``bind`` builds these from a ``HostSnapshot``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from vifscope.model.backend import UnixSocketFact, VfConfig
from vifscope.model.core import DeclaredVif, LibvirtNetwork, ObservedLink, OvsPort
from vifscope.model.guestaddr import VifAddress


class VifStatus(StrEnum):
    """The binding verdict of one vif; earlier members win over later ones."""

    INACTIVE = "inactive"
    MISSING = "missing"
    DETACHED = "detached"
    MISBOUND = "misbound"
    DOWN = "down"
    BOUND = "bound"
    UNVERIFIED = "unverified"


class Problem(StrEnum):
    """Every individual fault a binding can show; a vif lists all that apply.

    ``VERDICT`` maps each problem to the verdict it implies (the strongest one wins).
    """

    DOMAIN_INACTIVE = "domain_inactive"
    NO_TARGET = "no_target"
    LINK_MISSING = "link_missing"
    DETACHED = "detached"
    BRIDGE_MISSING = "bridge_missing"
    NETWORK_MISSING = "network_missing"
    NETWORK_INACTIVE = "network_inactive"
    MISBOUND = "misbound"
    LOWER_MISMATCH = "lower_mismatch"
    MODE_MISMATCH = "mode_mismatch"
    NOT_MACVTAP = "not_macvtap"
    TAP_DOWN = "tap_down"
    NO_CARRIER = "no_carrier"
    BRIDGE_DOWN = "bridge_down"
    LOWER_DOWN = "lower_down"
    LINK_STATE_DOWN = "link_state_down"
    OVS_ATTACHED_MAC_MISMATCH = "ovs_attached_mac_mismatch"
    OVS_ERROR = "ovs_error"
    SOCKET_MISSING = "socket_missing"
    NOT_A_SOCKET = "not_a_socket"
    SOCKET_UNHELD = "socket_unheld"
    SOCKET_NOT_QEMU = "socket_not_qemu"
    SOCKET_NOT_CONNECTED = "socket_not_connected"
    OVS_VHOST_PATH_MISMATCH = "ovs_vhost_path_mismatch"
    VF_MISSING = "vf_missing"
    VF_MAC_MISMATCH = "vf_mac_mismatch"
    VF_VLAN_MISMATCH = "vf_vlan_mismatch"
    VF_LINK_DISABLED = "vf_link_disabled"
    UNVERIFIED_TYPE = "unverified_type"
    SOURCE_UNAVAILABLE = "source_unavailable"


@dataclass(frozen=True)
class Expectation:
    """Where a vif should be plugged, resolved from its type and, for networks, the network.

    ``attach`` is one of: "linux-bridge", "ovs-bridge", "macvtap", "standalone" (ethernet:
    present and up, attached nowhere in particular), "vhostuser" (a UNIX socket at ``socket``,
    QEMU in ``mode`` server/client), "sriov-vf" (the VF at PCI ``pci``, or for a hostdev network
    one of the pool's VFs, carrying the XML's MAC and ``vlan``), or "unverifiable".
    """

    attach: str
    bridge: str | None = None  # linux-bridge / ovs-bridge name
    lower: str | None = None  # macvtap lower device
    lower_pool: tuple[str, ...] = ()  # macvtap network: any of these lowers is right
    mode: str | None = None  # macvtap mode
    network: LibvirtNetwork | None = None
    problems: tuple[Problem, ...] = ()  # found while resolving (network missing/inactive)
    reason: str = ""  # why unverifiable
    socket: str | None = None  # vhostuser: <source path=>
    pci: str | None = None  # sriov-vf: <source><address type='pci'> (DDDD:BB:SS.F)
    pci_pool: tuple[str, ...] = ()  # sriov-vf on a hostdev network: its <forward><address>es
    vlan: int | None = None  # sriov-vf: the VLAN the VF must carry (0: untagged)


@dataclass(frozen=True)
class VifBinding:
    """A declared vif joined with what exists, and the verdict."""

    vif: DeclaredVif
    expect: Expectation
    status: VifStatus
    problems: tuple[Problem, ...]
    detail: str
    link: ObservedLink | None = None
    ovs: OvsPort | None = None
    actual_bridge: str | None = None  # the bridge / OVS bridge the link sits on now
    uplinks: tuple[str, ...] = field(default_factory=tuple)
    socket: UnixSocketFact | None = None  # vhostuser: what the host shows at the socket path
    vf: VfConfig | None = None  # sriov-vf: the VF as its PF reports it
    addresses: tuple[VifAddress, ...] = ()  # the guest's addresses, best source first
