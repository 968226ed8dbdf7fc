"""What ``qos set`` reads before and after it changes anything: the vif's tap and declared
``<bandwidth>`` (live XML), the domain's vifscope QoS metadata, the tap's qdiscs and tc's
shaping of the tap and of vifscope's ifb device. Read-only.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from vifscope.model.qos import Bandwidth, TcShaping
from vifscope.model.qospolicy import VifPolicy, VifSite
from vifscope.sources.cmd import CommandError
from vifscope.sources.kernel.tcshaping import read_tc
from vifscope.sources.libvirt.bandwidth import BandwidthXmlError, bandwidth_by_mac
from vifscope.sources.libvirt.conn import LibvirtUnavailable, connect, domain_vifs
from vifscope.sources.libvirt.qosmark import read_marks
from vifscope.sources.libvirt.qosmeta import QosMetaError, parse_policies
from vifscope.sources.qos import live_policy_xml


class SiteUnavailable(RuntimeError):
    """The vif or a source cannot be read; ``hint`` says what to do; ``code`` the exit code
    (2: no such domain / MAC, 3: a source is unavailable)."""

    def __init__(self, message: str, hint: str, code: int = 3) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code


@dataclass(frozen=True)
class VifRead:
    """One vif as ``qos set`` sees it: where its shaping goes, its live ``<bandwidth>``, the
    domain's vifscope policies by MAC, the vif's type and whether the domain runs."""

    site: VifSite
    bandwidth: Bandwidth | None
    policies: dict[str, VifPolicy]
    type: str
    running: bool


def _exists(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


def link_exists(name: str) -> bool:
    """Whether a link of that name exists in this network namespace."""
    return _exists(name) != 0


def read_shaping_of(devs: frozenset[str]) -> tuple[dict[str, tuple[str | None, bool]], TcShaping]:
    """(dev -> (root qdisc kind, has an ingress qdisc), tc's shaping) for ``devs``."""
    try:
        qdiscs, tc = read_tc(devs)
    except CommandError as exc:
        raise SiteUnavailable(str(exc), "does 'tc qdisc show' work here?") from exc
    out: dict[str, tuple[str | None, bool]] = {d: (None, False) for d in devs}
    for q in qdiscs:
        if q.dev in out:
            root, ingress = out[q.dev]
            out[q.dev] = (q.kind if q.root else root, ingress or q.ingress)
    return out, tc


def read_vif(uri: str, domain: str, mac: str) -> VifRead:
    """The vif ``mac`` of ``domain`` and everything a plan needs. Raises SiteUnavailable."""
    import libvirt

    try:
        with connect(uri) as conn:
            dom = conn.lookupByName(domain)
            vifs = domain_vifs(dom)
            xml = dom.XMLDesc(0)
            meta = live_policy_xml(dom) if dom.isActive() else None
    except LibvirtUnavailable as exc:
        raise SiteUnavailable(str(exc), exc.hint) from exc
    except libvirt.libvirtError as exc:
        code = 2 if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN else 3
        raise SiteUnavailable(str(exc).strip(), "check the name with 'virsh list --all'", code) from exc
    vif = next((v for v in vifs if (v.mac or "").lower() == mac), None)
    if vif is None:
        raise SiteUnavailable(f"{domain} has no interface with MAC {mac}", f"see 'vifscope qos -d {domain}'", 2)
    try:
        policies = parse_policies(meta)
        bandwidth = bandwidth_by_mac(xml).get(mac)
    except (QosMetaError, BandwidthXmlError) as exc:
        raise SiteUnavailable(str(exc), "fix or remove the domain's vifscope metadata by hand") from exc
    dev = vif.target or ""
    made = policies[mac].created if mac in policies else None
    names = [n for n in (dev, made.ifb if made else None) if n]
    qd, _tc = read_shaping_of(frozenset(names))
    root, ingress = qd.get(dev, (None, False))
    present = frozenset(n for n in names if _exists(n))
    kind = "direct" if vif.type == "network" and vif.live_dev and not vif.live_bridge else vif.type
    ovs = vif.virtualport == "openvswitch"
    site = VifSite(
        domain, mac, dev, _exists(dev) if dev else 0, root, ingress, present, bandwidth is not None, kind, ovs
    )
    return VifRead(site, bandwidth, policies, vif.type, vif.domain_state.has_taps)


def read_domain_marks(uri: str, domain: str, *, live: bool = True) -> dict[str, int]:
    """The live (or persistent) DSCP marks of ``domain``'s vifscope metadata (libvirt errors
    propagate)."""
    with connect(uri) as conn:
        return read_marks(conn.lookupByName(domain), live)


def read_config_policies(uri: str, domain: str) -> dict[str, VifPolicy]:
    """The persistent definition's tc-backend policies of ``domain`` by MAC (what a domain that
    is not running keeps). Raises SiteUnavailable."""
    import libvirt

    try:
        with connect(uri) as conn:
            meta = live_policy_xml(conn.lookupByName(domain), live=False)
        return parse_policies(meta)
    except LibvirtUnavailable as exc:
        raise SiteUnavailable(str(exc), exc.hint) from exc
    except libvirt.libvirtError as exc:
        raise SiteUnavailable(str(exc).strip(), "check the name with 'virsh list --all'") from exc
    except QosMetaError as exc:
        raise SiteUnavailable(str(exc), "fix or remove the domain's vifscope metadata by hand") from exc
