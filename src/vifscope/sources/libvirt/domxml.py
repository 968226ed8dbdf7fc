"""Parse libvirt domain XML (``virsh dumpxml``) into DeclaredVif records.

Pure: takes text, returns model objects. Tolerates every odd shape libvirt's own test
suite has (no target, no source, unknown types, non-ASCII names); raises DomainXmlError
only when the text is not XML, declares entities (xmlroot.py), or is not a ``<domain>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace

from vifscope.model import DeclaredVif, DomainState, InterfaceExtras
from vifscope.sources.libvirt.bandwidth import parse_bandwidth
from vifscope.sources.libvirt.factxml import interface_extras
from vifscope.sources.libvirt.qosmark import marks_in_element
from vifscope.sources.libvirt.qosmeta import QosMetaError, policies_in_element
from vifscope.sources.libvirt.xmlroot import xml_root


class DomainXmlError(ValueError):
    """The text is not a parseable libvirt domain document."""


def _attr(elem: ET.Element | None, name: str) -> str | None:
    if elem is None:
        return None
    value = elem.get(name)
    return value if value else None


def _int_attr(elem: ET.Element | None, name: str) -> int | None:
    value = _attr(elem, name)
    if value is None:
        return None
    try:
        return int(value, 10)  # libvirt reads these attributes as decimal
    except ValueError:
        return None


# What ``<source>`` attribute names the thing a type is plugged into, as written.
_SOURCE_ATTR: dict[str, str] = {
    "bridge": "bridge",
    "network": "network",
    "direct": "dev",
    "ethernet": "dev",
    "vhostuser": "path",
    "vdpa": "dev",
    "server": "address",
    "client": "address",
    "mcast": "address",
    "udp": "address",
    "vds": "switchid",
}


def _source_as_written(itype: str, source: ET.Element | None) -> str | None:
    if source is None:
        return None
    attr = _SOURCE_ATTR.get(itype)
    if attr is not None:
        return _attr(source, attr)
    if itype == "hostdev":
        return pci_address(source.find("address"))
    return None


def _pci_int(value: str | None) -> int | None:
    """libvirt reads PCI address parts as C integers (base 0): 0x03, 3 and 03 all work."""
    try:
        return int(value, 0) if value else 0
    except ValueError:
        try:
            return int(value or "", 16)  # tolerate hex without 0x (some hand-written XML)
        except ValueError:
            return None


def pci_address(addr: ET.Element | None) -> str | None:
    """``<address type='pci' domain= bus= slot= function=/>`` as sysfs names it (DDDD:BB:SS.F)."""
    if addr is None or addr.get("domain") is None or addr.get("type", "pci") != "pci":
        return None
    parsed = [_pci_int(addr.get(k)) for k in ("domain", "bus", "slot", "function")]
    parts = [p for p in parsed if p is not None and p >= 0]
    if len(parts) != len(parsed):
        return None
    return "{:04x}:{:02x}:{:02x}.{:x}".format(*parts)


def vlan_tags(vlan: ET.Element | None) -> tuple[int, ...]:
    if vlan is None:
        return ()
    ids = (_int_attr(tag, "id") for tag in vlan.findall("tag"))
    return tuple(i for i in ids if i is not None)


def _vcpus(root: ET.Element) -> int | None:
    vcpu = root.find("vcpu")
    if vcpu is None or not (vcpu.text or "").strip():
        return None
    try:
        return int((vcpu.text or "").strip())
    except ValueError:
        return None


def parse_interface(
    iface: ET.Element, *, domain: str, uuid: str, state: DomainState, index: int, vcpus: int | None
) -> DeclaredVif:
    """Convert one ``<interface>`` element."""
    itype = iface.get("type") or "unknown"
    kids: dict[str, ET.Element] = {}
    for child in iface:  # one pass over the children instead of a find() per field
        kids.setdefault(child.tag, child)  # the first of a tag, as find() would
    source = kids.get("source")
    mac = _attr(kids.get("mac"), "address")
    vport = kids.get("virtualport")
    params = vport.find("parameters") if vport is not None else None
    driver = kids.get("driver")
    return DeclaredVif(
        domain=domain,
        domain_uuid=uuid,
        domain_state=state,
        index=index,
        type=itype,
        mac=mac.lower() if mac else None,
        model=_attr(kids.get("model"), "type"),
        source=_source_as_written(itype, source),
        network=_attr(source, "network"),
        portgroup=_attr(source, "portgroup"),
        live_bridge=_attr(source, "bridge") if itype == "network" else None,
        live_dev=_attr(source, "dev") if itype == "network" else None,
        source_mode=_attr(source, "mode"),
        target=_attr(kids.get("target"), "dev"),
        link_state=_attr(kids.get("link"), "state") or "up",
        virtualport=_attr(vport, "type"),
        interface_id=_attr(params, "interfaceid"),
        mtu=_int_attr(kids.get("mtu"), "size"),
        alias=_attr(kids.get("alias"), "name"),
        driver=_attr(driver, "name"),
        queues=_int_attr(driver, "queues"),
        filterref=_attr(kids.get("filterref"), "filter"),
        vcpus=vcpus,
        bandwidth=parse_bandwidth(kids.get("bandwidth")),
        vlan_tags=vlan_tags(kids.get("vlan")),
    )


@dataclass(frozen=True)
class ParsedDomain:
    """One domain document read once: its vifs, and for doctor ``<domain type=>`` and each
    interface's extras (so a deep snapshot needs no second fetch or parse of the XML)."""

    name: str
    uuid: str
    virt_type: str
    vifs: tuple[DeclaredVif, ...]
    extras: tuple[InterfaceExtras, ...]


def parse_domain(
    text: str, state: DomainState, *, name: str | None = None, uuid: str | None = None, extras: bool = True
) -> ParsedDomain:
    """All interfaces of one domain, in document order (``index`` = position).

    ``name``/``uuid`` override the XML's own (libvirt's API is the better authority).
    ``extras=False`` skips the interface extras (status does not need them: ~6 % of its time).
    """
    root = xml_root(text, "domain", DomainXmlError)
    dom_name = name or (root.findtext("name") or "").strip() or "?"
    dom_uuid = uuid or (root.findtext("uuid") or "").strip()
    devices = root.find("devices")
    ifaces = devices.findall("interface") if devices is not None else []
    vcpus = _vcpus(root)
    vifs = tuple(
        parse_interface(iface, domain=dom_name, uuid=dom_uuid, state=state, index=i, vcpus=vcpus)
        for i, iface in enumerate(ifaces)
    )
    if root.find("metadata") is not None:  # vifscope's own QoS policies travel there
        vifs = with_policies(vifs, root)
    more = tuple(interface_extras(iface, dom_name, i) for i, iface in enumerate(ifaces)) if extras else ()
    return ParsedDomain(dom_name, dom_uuid, root.get("type", ""), vifs, more)


def with_policies(vifs: tuple[DeclaredVif, ...], root: ET.Element) -> tuple[DeclaredVif, ...]:
    """Each vif with its entry of the domain's vifscope QoS metadata (an unreadable element:
    none, as if absent -- ``qos set`` reads it itself and says why)."""
    marks = marks_in_element(root)
    if marks:
        vifs = tuple(replace(v, dscp_mark=marks.get((v.mac or "").lower())) for v in vifs)
    try:
        policies = policies_in_element(root)
    except QosMetaError:
        return vifs
    return tuple(replace(v, qos_policy=policies.get(v.mac or "")) for v in vifs) if policies else vifs


def parse_domain_xml(
    text: str, state: DomainState, *, name: str | None = None, uuid: str | None = None
) -> tuple[DeclaredVif, ...]:
    """The vifs of ``parse_domain``."""
    return parse_domain(text, state, name=name, uuid=uuid, extras=False).vifs
