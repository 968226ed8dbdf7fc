"""libvirt network XML as ``vifscope apply`` reads and writes it. Pure.

A changed network is written by editing its current definition in place (forward mode,
bridge name, the first IPv4 ``<ip>`` and its DHCP range), never by building a new one:
what the file does not name (DNS, IPv6, static DHCP hosts, NAT port ranges, the UUID and
bridge MAC) stays as it was.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET

from vifscope.model.desired import Ipv4, NetMode, NetworkSpec


class NetworkXmlUnsupported(ValueError):
    """A network whose forward mode apply does not manage (hostdev, passthrough, vepa…)."""


def _root(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def _mode(root: ET.Element) -> NetMode:
    forward = root.find("forward")
    if forward is None:
        return NetMode.ISOLATED
    mode = forward.get("mode") or "nat"
    if mode == "bridge" and forward.find("interface") is not None:
        return NetMode.MACVTAP
    try:
        return NetMode(mode)
    except ValueError:
        raise NetworkXmlUnsupported(f"forward mode {mode!r} is not managed by vifscope apply") from None


def _ipv4_element(root: ET.Element) -> ET.Element | None:
    for ip in root.findall("ip"):
        if ip.get("family", "ipv4") == "ipv4" and ip.get("address"):
            return ip
    return None


def _prefix(ip: ET.Element) -> int:
    if ip.get("prefix"):
        return int(ip.get("prefix", "0"))
    netmask = ip.get("netmask") or "255.255.255.0"
    return ipaddress.ip_network(f"0.0.0.0/{netmask}").prefixlen


def _ipv4(root: ET.Element) -> Ipv4 | None:
    ip = _ipv4_element(root)
    if ip is None:
        return None
    rng = ip.find("dhcp/range")
    dhcp = (rng.get("start", ""), rng.get("end", "")) if rng is not None else None
    return Ipv4(f"{ip.get('address')}/{_prefix(ip)}", dhcp)


def spec_of(xml: str, *, active: bool, autostart: bool) -> NetworkSpec:
    """The file's view of a defined network (NetworkXmlUnsupported for other modes)."""
    root = _root(xml)
    bridge = root.find("bridge")
    forward = root.find("forward")
    devices = tuple(e.get("dev", "") for e in forward.findall("interface")) if forward is not None else ()
    return NetworkSpec(
        name=(root.findtext("name") or "").strip(),
        mode=_mode(root),
        bridge=(bridge.get("name") or None) if bridge is not None else None,
        ipv4=_ipv4(root),
        devices=devices,
        autostart=autostart,
        active=active,
    )


def same_ipv4(a: Ipv4 | None, b: Ipv4 | None) -> bool:
    if a is None or b is None:
        return a is b
    return ipaddress.ip_interface(a.address) == ipaddress.ip_interface(b.address) and a.dhcp == b.dhcp


def _set_forward(root: ET.Element, spec: NetworkSpec, mode: NetMode, old: NetMode | None) -> None:
    forward = root.find("forward")
    if mode is NetMode.ISOLATED or (forward is not None and old is not mode):
        if forward is not None:
            root.remove(forward)
        forward = None
    if mode is NetMode.ISOLATED:
        return
    if forward is None:
        forward = ET.Element("forward")
        root.insert(2, forward)
    forward.set("mode", "bridge" if mode is NetMode.MACVTAP else mode.value)
    if mode is NetMode.MACVTAP and spec.devices:  # not named: the devices it has stay
        for child in forward.findall("interface"):
            forward.remove(child)
        for dev in spec.devices:
            ET.SubElement(forward, "interface", dev=dev)


def _set_bridge(root: ET.Element, spec: NetworkSpec, mode: NetMode) -> None:
    bridge = root.find("bridge")
    if mode is NetMode.MACVTAP:
        if bridge is not None:
            root.remove(bridge)
        return
    if spec.bridge is None:
        return
    if bridge is None:
        bridge = ET.SubElement(root, "bridge")
    if mode is NetMode.BRIDGE:  # stp/delay describe a bridge libvirt owns, not a host one
        bridge.attrib.clear()
    bridge.set("name", spec.bridge)


def _set_ipv4(root: ET.Element, spec: NetworkSpec, mode: NetMode) -> None:
    if not mode.has_own_bridge:  # libvirt refuses <ip> on bridge / macvtap networks
        for extra in root.findall("ip"):
            root.remove(extra)
        return
    if spec.ipv4 is None:
        return
    ip = _ipv4_element(root)
    if ip is None:
        ip = ET.SubElement(root, "ip")
    iface = ipaddress.ip_interface(spec.ipv4.address)
    for attr in ("netmask", "prefix"):
        ip.attrib.pop(attr, None)
    ip.set("address", str(iface.ip))
    ip.set("prefix", str(iface.network.prefixlen))
    _set_dhcp(ip, spec.ipv4.dhcp)


def _set_dhcp(ip: ET.Element, dhcp_range: tuple[str, str] | None) -> None:
    """The first ``<range>`` becomes the file's (static ``<host>`` entries stay)."""
    dhcp = ip.find("dhcp")
    if dhcp_range is None:
        if dhcp is not None:
            for old in dhcp.findall("range"):
                dhcp.remove(old)
        return
    if dhcp is None:
        dhcp = ET.SubElement(ip, "dhcp")
    rng = dhcp.find("range")
    if rng is None:
        rng = ET.Element("range")
        dhcp.insert(0, rng)
    rng.attrib.clear()
    rng.set("start", dhcp_range[0])
    rng.set("end", dhcp_range[1])


def render(spec: NetworkSpec, base: str | None) -> str:
    """The definition to ``net-define``: ``base`` (the current XML) edited to match ``spec``,
    or a new document. ``spec.xml`` (a checkpoint's) is returned as it is."""
    if spec.xml is not None:
        return spec.xml
    if base is None:
        root = ET.Element("network")
        ET.SubElement(root, "name").text = spec.name
        old: NetMode | None = None
    else:
        root = _root(base)
        old = _mode_or_none(root)
    mode = spec.mode or old or NetMode.ISOLATED
    _set_forward(root, spec, mode, old)
    _set_bridge(root, spec, mode)
    _set_ipv4(root, spec, mode)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _mode_or_none(root: ET.Element) -> NetMode | None:
    try:
        return _mode(root)
    except NetworkXmlUnsupported:
        return None


def canonical(xml: str) -> str:
    """For comparing two definitions: attribute order and whitespace do not count."""
    return ET.canonicalize(xml, strip_text=True)
