"""What ``vifscope qos`` reads beyond a status snapshot: tc's shaping (rtnetlink), OVSDB's QoS
rows (only when a running vif sits on OVS) and each running domain's persistent
``<bandwidth>`` (``virsh dumpxml --inactive``), to say when it differs from the live one.

Each part is guarded: a failing one is a SourceError and its part is None.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vifscope.model import HostSnapshot, SourceError
from vifscope.model.qos import Bandwidth, OvsQos, TcShaping
from vifscope.model.qospolicy import QOS_NS, VifPolicy
from vifscope.sources.cmd import CommandError
from vifscope.sources.kernel.tcshaping import read_tc_shaping
from vifscope.sources.libvirt.bandwidth import BandwidthXmlError, bandwidth_by_mac
from vifscope.sources.libvirt.conn import XML_FETCHERS, LibvirtState, connect, read_state
from vifscope.sources.libvirt.qosmeta import QosMetaError, parse_policies
from vifscope.sources.ovs import OvsError
from vifscope.sources.ovsqos import read_ovs_qos

TC_HINT = "vifscope reads qdiscs, classes and filters over rtnetlink as tc does: does 'tc qdisc show' work here?"
OVS_HINT = "is ovsdb-server running? start it with 'ovs-ctl start' or 'systemctl start openvswitch-switch'"
CONFIG_HINT = "the live <bandwidth> is shown; the persistent one could not be compared"

ConfigBandwidth = dict[tuple[str, str], Bandwidth | None]
Policies = dict[tuple[str, str], VifPolicy]


@dataclass(frozen=True)
class QosSources:
    tc: TcShaping | None
    ovs: tuple[OvsQos, ...] | None  # None: not needed, or failed (see errors)
    config: ConfigBandwidth | None
    errors: tuple[SourceError, ...]


def _running_targets(snap: HostSnapshot) -> frozenset[str]:
    return frozenset(v.target for v in snap.vifs if v.target and v.domain_state.has_taps)


def live_policy_xml(dom: Any, *, live: bool = True) -> str | None:
    """The live (or, ``live=False``, persistent) vifscope QoS metadata element of a domain
    (None: it has none)."""
    import libvirt

    flag = libvirt.VIR_DOMAIN_AFFECT_LIVE if live else libvirt.VIR_DOMAIN_AFFECT_CONFIG
    try:
        return str(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, QOS_NS, flag))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return None
        raise


def _inactive_xml(dom: Any) -> tuple[str, str | Exception, str | None]:
    import libvirt

    name = str(dom.name())  # kept by the binding: no round trip, and known when the fetch fails
    try:
        return name, str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)), live_policy_xml(dom)
    except libvirt.libvirtError as exc:  # vanished meanwhile: reported as that domain's error
        failed: Exception = exc
        return name, failed, None


def read_config_bandwidth(
    conn: Any, errors: list[SourceError], policies: Policies | None = None
) -> ConfigBandwidth | None:
    """(domain, MAC) -> the persistent definition's ``<bandwidth>``, for every running domain;
    ``policies`` receives each one's live vifscope QoS metadata by (domain, MAC)."""
    import libvirt

    out: ConfigBandwidth = {}
    try:
        doms = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        with ThreadPoolExecutor(max_workers=XML_FETCHERS, thread_name_prefix="vifscope-qos") as pool:
            fetched = list(pool.map(_inactive_xml, doms))
    except libvirt.libvirtError as exc:
        errors.append(SourceError("libvirt-config", str(exc).strip(), CONFIG_HINT))
        return None
    for name, xml, meta in fetched:
        try:
            if isinstance(xml, Exception):
                raise BandwidthXmlError(str(xml).strip())
            out.update({(name, mac): bw for mac, bw in bandwidth_by_mac(xml).items()})
            if policies is not None:
                policies.update({(name, mac): p for mac, p in parse_policies(meta).items()})
        except (BandwidthXmlError, QosMetaError) as exc:
            errors.append(SourceError("libvirt-config", f"domain {name}: {exc}", CONFIG_HINT))
    return out


@dataclass
class ConfigReader:
    """A ``take_snapshot`` libvirt reader that, on the same connection and right after the live
    read, also fetches every running domain's persistent XML (one connection: libvirt's test
    driver re-parses its node file on every open). The result waits in ``config``."""

    config: ConfigBandwidth | None = None
    errors: list[SourceError] = field(default_factory=list)
    policies: Policies = field(default_factory=dict)

    def __call__(self, uri: str) -> LibvirtState:
        with connect(uri) as conn:
            state = read_state(conn, uri)
            self.config = read_config_bandwidth(conn, self.errors, self.policies)
        return state


def read_qos_sources(snap: HostSnapshot, config: ConfigReader | None = None) -> QosSources:
    """The enforced side of every running vif of ``snap`` (and what ``config`` read meanwhile)."""
    errors: list[SourceError] = list(config.errors) if config else []
    targets = _running_targets(snap)
    tc = None
    try:
        tc = read_tc_shaping(targets)
    except CommandError as exc:
        errors.append(SourceError("tc", str(exc), TC_HINT))
    ovs = None
    if any(t in snap.ovs_by_name for t in targets):
        try:
            ovs = read_ovs_qos()
        except OvsError as exc:
            errors.append(SourceError("ovs", str(exc), OVS_HINT))
    return QosSources(tc, ovs, config.config if config else None, tuple(errors))
