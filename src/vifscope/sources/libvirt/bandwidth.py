"""``<interface><bandwidth>`` of domain XML: the rates libvirt applies to a vif.

Pure. Units stay libvirt's (average / peak / floor kB/s, burst KiB; see model/qos.py). An
attribute that is not a decimal integer reads as unset: libvirt itself rejects such XML at
define time, so only a hand-made document can carry one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vifscope.model.qos import Bandwidth, BandwidthRate
from vifscope.sources.libvirt.xmlroot import xml_root


class BandwidthXmlError(ValueError):
    """The persistent definition is not a readable domain document."""


_FIELDS = ("average", "peak", "burst", "floor")


def _number(elem: ET.Element, name: str) -> int | None:
    value = (elem.get(name) or "").strip()
    return int(value) if value.isdecimal() else None


def _rate(elem: ET.Element | None) -> BandwidthRate | None:
    if elem is None:
        return None
    rate = BandwidthRate(*(_number(elem, f) for f in _FIELDS))
    return rate if rate != BandwidthRate() else None


def parse_bandwidth(elem: ET.Element | None) -> Bandwidth | None:
    """The ``<bandwidth>`` element of an interface (None: absent, or declares nothing).

    ``average='0'`` counts as declared: libvirt accepts it and applies nothing, which the
    verdict shows as nothing to enforce (``BandwidthRate.shapes``)."""
    if elem is None:
        return None
    bw = Bandwidth(_rate(elem.find("inbound")), _rate(elem.find("outbound")))
    return bw if bw != Bandwidth() else None


def bandwidth_by_mac(text: str) -> dict[str, Bandwidth | None]:
    """Each interface's ``<bandwidth>`` of one domain document, by lower-case MAC (how the live
    and the persistent definitions of one vif are matched: hot-plug moves indexes, not MACs).
    Interfaces without a MAC are left out. Raises BandwidthXmlError."""
    root = xml_root(text, "domain", BandwidthXmlError)
    out: dict[str, Bandwidth | None] = {}
    for iface in root.iterfind("devices/interface"):
        mac = iface.find("mac")
        address = (mac.get("address") or "").lower() if mac is not None else ""
        if address:
            out[address] = parse_bandwidth(iface.find("bandwidth"))
    return out
