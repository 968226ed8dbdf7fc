"""The shared types of ``vifscope check-xml``'s checks (xmlcheck, xmlplug): the file's domain
and interfaces, the host view they are compared with, and the per-interface context. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from vifscope.checks.macs import StoreView
from vifscope.model import DeclaredVif, Evidence, Finding, Fix, HostSnapshot, Severity, Shaping
from vifscope.model.mac import MacError, normalize_mac

# id -> (title, category); the severity is the finding's own (a check may give two).
CHECK_IDS: dict[str, tuple[str, str]] = {
    "xml.source_missing": ("no <source> to plug into", "binding"),
    "xml.bridge_missing": ("source bridge does not exist", "binding"),
    "xml.not_a_bridge": ("source is not a bridge", "binding"),
    "xml.bridge_kind": ("Linux bridge vs Open vSwitch disagree", "binding"),
    "xml.bridge_down": ("source bridge is down", "binding"),
    "xml.network_missing": ("source network is not defined", "network"),
    "xml.network_inactive": ("source network is not active", "network"),
    "xml.network_mode": ("network's forward mode cannot serve the interface", "network"),
    "xml.direct_dev_missing": ("direct source device does not exist", "binding"),
    "xml.mac_invalid": ("invalid MAC", "network"),
    "xml.mac_in_use": ("MAC used by another domain", "network"),
    "xml.mac_host_conflict": ("MAC of a host link", "network"),
    "xml.mac_store_taken": ("MAC allocated to another domain in the store", "network"),
    "xml.mac_random": ("no MAC: libvirt picks a random one", "network"),
    "xml.model_not_virtio": ("emulated NIC model", "performance"),
    "xml.target_invalid": ("target name the kernel refuses", "binding"),
    "xml.target_reserved": ("target name libvirt drops", "binding"),
    "xml.target_in_use": ("target name taken by a host link", "binding"),
    "xml.bandwidth_ignored": ("<bandwidth> on a type libvirt does not shape", "performance"),
    "xml.bandwidth_unsupported": ("<bandwidth> the kernel cannot apply", "host"),
}

EMULATED_MODELS = frozenset({"e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet", "i82551", "i82557b", "i82559er"})
SHAPED_TYPES = frozenset({"bridge", "network", "direct", "ethernet"})
# Types that take a <model>: the guest sees an emulated or virtio NIC on a host backend.
MODEL_TYPES = frozenset({"bridge", "network", "direct", "ethernet", "user"})
# libvirt 9.0 drops a <target dev> with these prefixes on define and names the device itself
# (virsh define + dumpxml: vnet7 -> generated; managed='no' ethernet keeps its name).
RESERVED_PREFIXES = ("vnet", "macvtap", "macvlan")
IFNAMSIZ = 15  # bytes of a Linux interface name
ZERO_MAC = "00:00:00:00:00:00"


@dataclass(frozen=True)
class XmlInterface:
    """What check-xml reads of one ``<interface>`` beyond DeclaredVif."""

    index: int
    inbound: bool = False  # <bandwidth><inbound>: libvirt installs sfq under htb
    outbound: bool = False  # <bandwidth><outbound>: libvirt adds a u32 filter with police
    target_managed: bool = True  # <target managed='no'>: libvirt keeps even a vnet* name


@dataclass(frozen=True)
class XmlDomain:
    """One file: its domain and interfaces, in document order."""

    file: str
    name: str
    uuid: str
    vifs: tuple[DeclaredVif, ...]
    interfaces: tuple[XmlInterface, ...]


@dataclass(frozen=True)
class HostView:
    """What the file is compared with: the host, the store (None: no store) and the kernel's
    shaping support (None: unknown, the bandwidth check is not evaluated)."""

    snap: HostSnapshot
    store: StoreView | None = None
    shaping: Shaping | None = None


@dataclass(frozen=True)
class VifCheck:
    """One interface of the file with everything a check reads."""

    dom: XmlDomain
    vif: DeclaredVif
    iface: XmlInterface
    host: HostView
    ctx: FileContext

    @property
    def uri(self) -> str:
        return self.host.snap.uri

    def finding(
        self,
        check: str,
        sev: Severity,
        msg: str,
        ev: list[tuple[str, Evidence]],
        fix: Fix | None,
        subject: str | None = None,
    ) -> Finding:
        evidence: tuple[tuple[str, Evidence], ...] = (("interface", self.vif.index), ("type", self.vif.type), *ev)
        v = self.vif
        return Finding(check, sev, CHECK_IDS[check][1], msg, self.dom.name, v.mac, v.target, evidence, fix, subject)


@dataclass(frozen=True)
class FileContext:
    """What every interface of one file is compared with, worked out once per file."""

    dom: XmlDomain
    snap: HostSnapshot

    def _mine(self, v: DeclaredVif) -> bool:
        """A host vif of the domain this file redefines: not a conflict with itself."""
        return v.domain == self.dom.name or bool(self.dom.uuid and v.domain_uuid == self.dom.uuid)

    @cached_property
    def own_targets(self) -> frozenset[str]:
        return frozenset(v.target for v in self.snap.vifs if v.target and self._mine(v) and v.domain_state.has_taps)

    @cached_property
    def macs_elsewhere(self) -> dict[str, list[str]]:
        """MAC -> "domain (state)" of every other domain here, running or defined."""
        out: dict[str, list[str]] = {}
        for v in self.snap.vifs:
            if v.mac and not self._mine(v):
                out.setdefault(v.mac, []).append(f"{v.domain} ({v.domain_state.value})")
        return out

    @cached_property
    def link_macs(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for link in self.snap.links:
            if link.mac and link.mac != ZERO_MAC and link.name not in self.own_targets:
                out.setdefault(link.mac.lower(), []).append(link.name)
        return out

    @cached_property
    def macs_in_file(self) -> dict[str, list[int]]:
        """Canonical MAC -> the file's interfaces that have it (malformed ones: mac_invalid's)."""
        out: dict[str, list[int]] = {}
        for v in self.dom.vifs:
            try:
                out.setdefault(normalize_mac(v.mac or ""), []).append(v.index)
            except MacError:
                continue
        return out
