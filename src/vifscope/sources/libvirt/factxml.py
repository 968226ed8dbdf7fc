"""Pure parsers for the libvirt XML the deep facts need: nwfilter bindings and definitions,
per-interface security/tuning attributes of a domain, and a network's ``<port isolated>``.

The binding join (domxml.py) does not need these attributes; doctor's checks do.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vifscope.model import InterfaceExtras, NwfilterBinding, NwfilterDef
from vifscope.sources.libvirt.xmlroot import xml_root


class FactXmlError(ValueError):
    """Not well-formed XML, or not the expected root element."""


def _root(text: str, tag: str) -> ET.Element:
    return xml_root(text, tag, FactXmlError)


def _yes(value: str | None) -> bool:
    return value == "yes"


def parse_binding_xml(text: str) -> NwfilterBinding:
    """``virsh nwfilter-binding-dumpxml``: owner, port device, MAC and the top filter."""
    root = _root(text, "filterbinding")
    mac = root.find("mac")
    ref = root.find("filterref")
    port = root.find("portdev")
    return NwfilterBinding(
        port_dev=port.get("name", "") if port is not None else "",
        filter=ref.get("filter", "") if ref is not None else "",
        mac=(mac.get("address") or "").lower() or None if mac is not None else None,
        owner=(root.findtext("owner/name") or "").strip() or None,
        owner_uuid=(root.findtext("owner/uuid") or "").strip() or None,
    )


def parse_nwfilter_xml(text: str) -> NwfilterDef:
    """``virsh nwfilter-dumpxml``: the filter's name and the filters it references."""
    root = _root(text, "filter")
    refs = tuple(r.get("filter", "") for r in root.findall("filterref") if r.get("filter"))
    return NwfilterDef(root.get("name", ""), refs)


def _port_isolated(elem: ET.Element) -> bool | None:
    port = elem.find("port")
    if port is None or port.get("isolated") is None:
        return None
    return _yes(port.get("isolated"))


def interface_extras(iface: ET.Element, domain: str, index: int) -> InterfaceExtras:
    """The attributes security and tuning checks need of one ``<interface>``
    (trustGuestRxFilters, ``<port isolated>``, ``<bandwidth>``)."""
    return InterfaceExtras(
        domain=domain,
        index=index,
        trust_guest_rx_filters=_yes(iface.get("trustGuestRxFilters")),
        port_isolated=_port_isolated(iface),
        bandwidth=iface.find("bandwidth") is not None,
    )


def parse_domain_extras(text: str, name: str | None = None) -> tuple[str, tuple[InterfaceExtras, ...]]:
    """``<domain type=>`` and each ``<interface>``'s extras, in document order. (A live read
    gets both from ``domxml.parse_domain``, in the same parse as the vifs.)"""
    root = _root(text, "domain")
    dom = name or (root.findtext("name") or "").strip()
    devices = root.find("devices")
    ifaces = devices.findall("interface") if devices is not None else []
    return root.get("type", ""), tuple(interface_extras(iface, dom, i) for i, iface in enumerate(ifaces))


def parse_network_port_isolated(text: str) -> bool:
    """``<network><port isolated='yes'/>``: every port of the network's bridge isolated."""
    return bool(_port_isolated(_root(text, "network")))
