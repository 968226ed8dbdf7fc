"""Parse libvirt network XML (``virsh net-dumpxml``) into LibvirtNetwork records. Pure."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET

from vifscope.model import DhcpRange, LibvirtNetwork
from vifscope.sources.libvirt.domxml import pci_address, vlan_tags
from vifscope.sources.libvirt.xmlroot import xml_root


class NetworkXmlError(ValueError):
    """The text is not a parseable libvirt network document."""


def _forward_mode(root: ET.Element) -> str:
    forward = root.find("forward")
    if forward is None:
        return "isolated"
    # A bare <forward/> means NAT (libvirt's default forward mode).
    return forward.get("mode") or "nat"


def _forward_devs(root: ET.Element) -> tuple[str, ...]:
    forward = root.find("forward")
    if forward is None:
        return ()
    devs = [e.get("dev", "") for e in forward.findall("pf")]
    devs += [e.get("dev", "") for e in forward.findall("interface")]
    if not devs and forward.get("dev"):
        devs.append(forward.get("dev", ""))
    return tuple(d for d in devs if d)


def _forward_pci(root: ET.Element) -> tuple[str, ...]:
    found = (pci_address(a) for a in root.findall("forward/address"))
    return tuple(a for a in found if a)


def _address(ip: ET.Element) -> str | None:
    addr = ip.get("address")
    if not addr:
        return None
    prefix = ip.get("prefix")
    netmask = ip.get("netmask")
    if prefix is None and netmask:
        try:
            prefix = str(ipaddress.ip_network(f"0.0.0.0/{netmask}").prefixlen)
        except ValueError:
            prefix = None
    text = f"{addr}/{prefix}" if prefix else addr
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return None  # libvirt refuses to define such an address: left out, as no check could read it
    return text


def _inbound_average(root: ET.Element) -> int | None:
    """The network's own ``<bandwidth><inbound average=>`` (not a portgroup's): what libvirt
    divides among its vifs' floors."""
    inbound = root.find("bandwidth/inbound")
    avg = inbound.get("average") if inbound is not None else None
    return int(avg) if avg and avg.isdecimal() else None


def _ips(root: ET.Element) -> tuple[tuple[str, ...], tuple[DhcpRange, ...]]:
    addresses: list[str] = []
    ranges: list[DhcpRange] = []
    for ip in root.findall("ip"):
        addr = _address(ip)
        if addr:
            addresses.append(addr)
        for rng in ip.findall("dhcp/range"):
            if rng.get("start") and rng.get("end"):
                ranges.append(DhcpRange(rng.get("start", ""), rng.get("end", "")))
    return tuple(addresses), tuple(ranges)


def parse_network_xml(text: str, *, active: bool, autostart: bool | None, leases: int | None = None) -> LibvirtNetwork:
    """One libvirt network; ``active``/``autostart``/``leases`` come from the API."""
    root = xml_root(text, "network", NetworkXmlError)
    bridge = root.find("bridge")
    vport = root.find("virtualport")
    mtu = root.find("mtu")
    addresses, ranges = _ips(root)
    mtu_size = mtu.get("size") if mtu is not None else None
    return LibvirtNetwork(
        name=(root.findtext("name") or "").strip() or "?",
        uuid=(root.findtext("uuid") or "").strip(),
        active=active,
        autostart=autostart,
        mode=_forward_mode(root),
        bridge=(bridge.get("name") or None) if bridge is not None else None,
        virtualport=vport.get("type") if vport is not None else None,
        forward_devs=_forward_devs(root),
        dhcp_ranges=ranges,
        addresses=addresses,
        leases=leases,
        mtu=int(mtu_size) if mtu_size and mtu_size.isdigit() else None,
        forward_pci=_forward_pci(root),
        vlan_tags=vlan_tags(root.find("vlan")),
        inbound_average=_inbound_average(root),
    )
