"""``vifscope attach`` / ``detach`` as a pure plan: the ``<interface>`` XML, the scope
(live / config), and every reason to refuse before anything changes.

The refusals are check-xml's own checks (``vifscope.checks.xmlcheck``) run on the domain
as it would be with the new interface, so ``check-xml`` and ``attach`` say the same about
the same NIC; plus what only a hot-plug has: an unknown domain, a domain that is not
running for ``--live``, an x86 guest without ``<features><acpi/>``. Nothing here does I/O.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum

from vifscope.checks.macs import StoreView
from vifscope.checks.xmlbase import HostView, XmlDomain, XmlInterface
from vifscope.checks.xmlcheck import check_domain
from vifscope.model import DeclaredVif, DomainState, Finding, HostSnapshot, Severity
from vifscope.model.devices import DomainView
from vifscope.model.mac import MacError, in_quarantine, normalize_mac

DIRECT_MODES = ("vepa", "bridge", "private", "passthrough")
# Warnings of check-xml that still make a hot-plug pointless or harmful.
_REFUSING_WARNINGS = frozenset({"xml.network_inactive", "xml.mac_store_taken"})
# What to do instead, in attach's words (check-xml's own fix notes speak of XML files).
_HINTS: dict[str, str] = {
    "xml.bridge_kind": "use --ovs BR for an Open vSwitch bridge, --bridge BR for a Linux bridge",
    "xml.not_a_bridge": "use --bridge with a Linux bridge, or --direct DEV[:mode] for a macvtap on a device",
    "xml.mac_invalid": "use --mac auto (a pool's MAC) or a unicast MAC (first octet even)",
    "xml.mac_in_use": "use --mac auto (a pool's MAC) or a MAC no NIC has",
    "xml.mac_host_conflict": "use --mac auto (a pool's MAC) or a MAC no NIC has",
    "xml.mac_store_taken": "use --mac auto: the pool hands out a MAC nobody holds",
    "xml.network_mode": "use another network",
}


class NicKind(StrEnum):
    BRIDGE = "bridge"  # a Linux bridge
    NETWORK = "network"  # a libvirt network
    OVS = "ovs"  # an Open vSwitch bridge (type bridge + virtualport openvswitch)
    DIRECT = "direct"  # a macvtap on a host device


class Refused(Exception):
    """A reason not to change anything: one line, a hint, the check id that said so."""

    def __init__(self, message: str, hint: str, check: str = "attach.refused") -> None:
        super().__init__(message)
        self.hint = hint
        self.check = check


@dataclass(frozen=True)
class NicRequest:
    """What the user asked for. ``mac`` None: a pool allocates one."""

    kind: NicKind
    source: str
    mode: str | None = None  # direct only
    model: str = "virtio"
    mac: str | None = None


@dataclass(frozen=True)
class Scope:
    """Which definitions change: the running guest (live), the persistent one (config)."""

    live: bool
    config: bool

    def words(self) -> tuple[str, ...]:
        return tuple(w for w, on in (("live", self.live), ("config", self.config)) if on)


def parse_direct(text: str) -> tuple[str, str]:
    """``DEV[:mode]`` (mode vepa, bridge, private or passthrough; default vepa, as libvirt's)."""
    dev, _, mode = text.partition(":")
    mode = mode or "vepa"
    if not dev or mode not in DIRECT_MODES:
        raise Refused(
            f"--direct {text!r}: want DEV[:mode] with mode one of {', '.join(DIRECT_MODES)}", "e.g. eth1:bridge"
        )
    return dev, mode


def resolve_scope(dom: DomainView, live: bool, config: bool) -> Scope:
    """virsh's rules: neither flag means the running guest if it runs, else its definition."""
    if not live and not config:
        live, config = dom.running, not dom.running
    if live and not dom.running:
        raise Refused(
            f"domain {dom.name} is not running ({dom.state.value}): --live needs a running guest", "use --config"
        )
    if config and not dom.persistent:
        raise Refused(f"domain {dom.name} is transient: it has no persistent definition for --config", "use --live")
    return Scope(live, config)


def interface_type(req: NicRequest) -> str:
    """``<interface type=>``: an OVS bridge is a type='bridge' with an openvswitch virtualport."""
    return "bridge" if req.kind is NicKind.OVS else req.kind.value


def interface_element(req: NicRequest, mac: str) -> ET.Element:
    """The ``<interface>`` to hot-plug. Built as elements: names are attribute values, never
    pasted into markup (a bridge may be named ``a'b`` or ``<x>``)."""
    iface = ET.Element("interface", type=interface_type(req))
    ET.SubElement(iface, "mac", address=mac)
    if req.kind is NicKind.DIRECT:
        ET.SubElement(iface, "source", dev=req.source, mode=req.mode or "vepa")
    elif req.kind is NicKind.NETWORK:
        ET.SubElement(iface, "source", network=req.source)
    else:
        ET.SubElement(iface, "source", bridge=req.source)
    if req.kind is NicKind.OVS:
        ET.SubElement(iface, "virtualport", type="openvswitch")
    ET.SubElement(iface, "model", type=req.model)
    return iface


def interface_xml(req: NicRequest, mac: str) -> str:
    return ET.tostring(interface_element(req, mac), encoding="unicode")


def _declared(req: NicRequest, dom: DomainView, index: int, mac: str | None) -> DeclaredVif:
    return DeclaredVif(
        domain=dom.name,
        domain_uuid=dom.uuid,
        domain_state=DomainState.SHUTOFF,
        index=index,
        type=interface_type(req),
        mac=mac,
        model=req.model,
        source=req.source,
        network=req.source if req.kind is NicKind.NETWORK else None,
        source_mode=req.mode if req.kind is NicKind.DIRECT else None,
        virtualport="openvswitch" if req.kind is NicKind.OVS else None,
    )


def _as_file(req: NicRequest, dom: DomainView, mac: str | None) -> XmlDomain:
    """The new interface as check-xml reads a file: the domain's own NICs are "its own" there
    (not a clash), so ``check_attach`` compares the MAC with them first."""
    vif = _declared(req, dom, 0, mac)
    return XmlDomain(f"attach {dom.name}", dom.name, dom.uuid, (vif,), (XmlInterface(0),))


def _own_clash(dom: DomainView, mac: str) -> Refused | None:
    """The domain itself already has ``mac`` (live or in its persistent definition)."""
    for where, vifs in (("live", dom.live), ("persistent", dom.config)):
        if any((v.mac or "").lower() == mac for v in vifs):
            msg = f"MAC {mac} is already used by an interface of {dom.name} ({where} definition)"
            return Refused(msg, _HINTS["xml.mac_in_use"], "xml.mac_in_use")
    return None


def _refuses(f: Finding, store: StoreView | None) -> bool:
    if f.severity is Severity.ERROR:
        return True
    if f.check not in _REFUSING_WARNINGS:
        return False
    if f.check == "xml.mac_store_taken" and store is not None:
        rec = next((r for r in store.records if r.text == f.mac), None)
        return rec is not None and in_quarantine(rec, store.now)
    return True


def refusal(f: Finding) -> Refused:
    hint = _HINTS.get(f.check) or (f.fix.text().lstrip("# ") if f.fix else "see 'vifscope check-xml'")
    return Refused(f.message, hint, f.check)


def check_interface(
    req: NicRequest, dom: DomainView, snap: HostSnapshot, store: StoreView | None, mac: str | None
) -> tuple[Finding, ...]:
    """check-xml's findings for the new interface (``mac`` None: not chosen yet, not checked)."""
    found = check_domain(_as_file(req, dom, mac), HostView(snap, store))
    return tuple(f for f in found if f.check != "xml.mac_random")


def check_attach(
    req: NicRequest, dom: DomainView, scope: Scope, snap: HostSnapshot, store: StoreView | None, mac: str | None
) -> None:
    """Raise Refused for the first reason not to hot-plug ``req`` into ``dom``."""
    if scope.live and dom.needs_acpi and not dom.acpi:
        raise Refused(
            f"domain {dom.name} has no <features><acpi/>: its guest cannot see a hot-plugged PCI NIC",
            f"add <acpi/> to <features> (virsh edit {dom.name}) and restart it, or use --config",
            "attach.no_acpi",
        )
    if mac is not None:
        try:
            clash = _own_clash(dom, normalize_mac(mac))
        except MacError as exc:
            raise Refused(str(exc), _HINTS["xml.mac_invalid"], "xml.mac_invalid") from exc
        if clash is not None:
            raise clash
    for f in check_interface(req, dom, snap, store, mac):
        if _refuses(f, store):
            raise refusal(f)


def find_interface(dom: DomainView, mac: str, scope: Scope) -> DeclaredVif:
    """The one interface with ``mac`` in the definitions ``scope`` changes (Refused if none or several)."""
    want = normalize_mac(mac)
    where = [*(dom.live if scope.live else ()), *(dom.config if scope.config else ())]
    found = [v for v in where if v.mac and v.mac.lower() == want]
    macs = {v.index for v in dom.live if v.mac and v.mac.lower() == want}
    if not found:
        words = " and ".join(scope.words())
        raise Refused(f"domain {dom.name} has no interface {want} ({words})", f"see 'vifscope status -d {dom.name}'")
    if len(macs) > 1 or len({v.index for v in dom.config if v.mac and v.mac.lower() == want}) > 1:
        raise Refused(f"domain {dom.name} has several interfaces {want}", "detach with virsh, naming the PCI address")
    return found[0]


def detach_xml(vif: DeclaredVif) -> str:
    """What identifies the interface to ``detachDeviceFlags``: its type, MAC (libvirt matches on
    it) and the ``<source>`` libvirt's parser requires of the type (as virsh detach-interface)."""
    iface = ET.Element("interface", type=vif.type)
    ET.SubElement(iface, "mac", address=vif.mac or "")
    if vif.type == "network" and (vif.network or vif.source):
        ET.SubElement(iface, "source", network=vif.network or vif.source or "")
    elif vif.type == "bridge" and vif.source:
        ET.SubElement(iface, "source", bridge=vif.source)
    elif vif.type == "direct" and vif.source:
        ET.SubElement(iface, "source", dev=vif.source, mode=vif.source_mode or "vepa")
    return ET.tostring(iface, encoding="unicode")
