"""libvirt's own test XML (tests/data/corpus, see SOURCES.md there) through the parsers and bind().

Every domain file must parse in any state, every ``<interface>`` must be found and get a
verdict; every network file must parse into the right mode/kind. Malformed and odd input
must never raise anything but DomainXmlError / NetworkXmlError (and those only for text
that is not XML or not the right document).
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.unit.ipjson import bridge, macvtap, phys, snapshot, tap
from vifscope.bind.join import bind, bind_one
from vifscope.bind.resolve import UNVERIFIABLE
from vifscope.model import DeclaredVif, DomainState, LibvirtNetwork, OvsPort, Problem, VifStatus
from vifscope.sources.libvirt.domxml import DomainXmlError, parse_domain_xml
from vifscope.sources.libvirt.netxml import NetworkXmlError, parse_network_xml

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
DOMAIN_FILES = sorted((CORPUS / "domains").glob("*.xml"))
NETWORK_FILES = sorted((CORPUS / "networks").glob("*.xml"))

# Types vifscope can check against host links; everything else must come out unverified.
VERIFIABLE = {"bridge", "network", "direct", "ethernet"}
# hostdev and vhostuser are checked against backend facts (sockets, VF tables); a snapshot
# without them (these tests', or a remote host's) leaves them unverified too.
MUST_BE_UNVERIFIED = ("hostdev", "vhostuser", "user", "vdpa", "server", "client", "mcast", "udp")
BACKEND_TYPES = ("hostdev", "vhostuser")
KERNEL_MACVTAP_MODE = {"passthrough": "passthru"}


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _interfaces(path: Path) -> list[ET.Element]:
    """Counted independently of vifscope: every <interface> anywhere in the document."""
    return list(ET.parse(path).getroot().iter("interface"))


def _parse(path: Path, state: DomainState = DomainState.RUNNING) -> tuple[DeclaredVif, ...]:
    return parse_domain_xml(path.read_text(encoding="utf-8"), state)


def _all_corpus_vifs() -> list[DeclaredVif]:
    return [v for p in DOMAIN_FILES for v in _parse(p)]


def test_corpus_is_present_with_attribution() -> None:
    assert (CORPUS / "SOURCES.md").is_file(), "libvirt corpus attribution must sit next to the copies"
    assert len(DOMAIN_FILES) >= 60
    assert len(NETWORK_FILES) >= 25


# --- domains: parsing ------------------------------------------------------------------------


@pytest.mark.parametrize("state", [DomainState.RUNNING, DomainState.SHUTOFF], ids=str)
@pytest.mark.parametrize("path", DOMAIN_FILES, ids=_ids(DOMAIN_FILES))
def test_domain_parses_and_finds_every_interface(path: Path, state: DomainState) -> None:
    elems = _interfaces(path)
    root = ET.parse(path).getroot()
    vifs = _parse(path, state)

    assert len(vifs) == len(elems), f"{path.name}: {len(elems)} <interface> elements, parsed {len(vifs)}"
    assert [v.index for v in vifs] == list(range(len(elems)))
    assert [v.type for v in vifs] == [e.get("type") for e in elems]
    assert {v.domain for v in vifs} <= {(root.findtext("name") or "").strip()}
    assert {v.domain_uuid for v in vifs} <= {(root.findtext("uuid") or "").strip()}
    assert all(v.domain_state is state for v in vifs)
    for vif, elem in zip(vifs, elems, strict=True):
        mac = elem.find("mac")
        want_mac = mac.get("address").lower() if mac is not None and mac.get("address") else None
        assert vif.mac == want_mac, f"{path.name}#{vif.index} mac"
        target = elem.find("target")
        assert vif.target == (target.get("dev") if target is not None else None), f"{path.name}#{vif.index} target"
        link = elem.find("link")
        assert vif.link_state == (link.get("state") if link is not None else "up")


def test_corpus_fields_as_written() -> None:
    """A few interfaces checked field by field against what their XML says."""
    (ovs,) = _parse(CORPUS / "domains" / "net-openvswitch.xml")
    assert (ovs.type, ovs.network, ovs.virtualport) == ("network", "ovs-net", "openvswitch")
    assert ovs.interface_id == "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"

    first = _parse(CORPUS / "domains" / "portprofile.xml")[0]
    assert (first.type, first.source, first.source_mode, first.virtualport) == ("direct", "eth0", "vepa", "802.1Qbg")

    (mid,) = _parse(CORPUS / "domains" / "net-midonet.xml")
    assert (mid.type, mid.source, mid.virtualport, mid.model) == ("bridge", "midonet", "midonet", "virtio")

    up, down = _parse(CORPUS / "domains" / "net-linkstate.xml")
    assert (up.link_state, down.link_state) == ("up", "down")

    (eth,) = _parse(CORPUS / "domains" / "net-eth-unmanaged-tap.xml")
    assert (eth.type, eth.target) == ("ethernet", "mytap0")

    groups = _parse(CORPUS / "domains" / "net-virtio-network-portgroup.xml")
    assert [(v.network, v.portgroup) for v in groups] == [("rednet", "bob"), ("blue", "sam"), ("blue", "sam")]

    teaming = _parse(CORPUS / "domains" / "net-virtio-teaming.xml")
    assert [v.type for v in teaming] == ["user", "user", "hostdev", "hostdev"]
    assert teaming[2].source == "0000:03:07.1"
    assert teaming[0].alias == "ua-backup0"


# --- domains: verdicts -----------------------------------------------------------------------


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=_ids(DOMAIN_FILES))
def test_corpus_verdicts_against_empty_host(path: Path) -> None:
    """Nothing exists on the host: running vifs are missing or unverified, shut-off ones inactive."""
    running = _parse(path, DomainState.RUNNING)
    empty = snapshot(running)
    for vif in running:
        b = bind_one(vif, empty)
        assert b.status in set(VifStatus)
        if vif.type in VERIFIABLE:
            assert b.status is VifStatus.MISSING, f"#{vif.index} {vif.type}: {b.status} {b.problems}"
            want = Problem.LINK_MISSING if vif.target else Problem.NO_TARGET
            assert want in b.problems
        else:
            assert b.status is VifStatus.UNVERIFIED, f"#{vif.index} {vif.type}: {b.status}"
            assert b.detail.strip()
    for vif in _parse(path, DomainState.SHUTOFF):
        b = bind_one(vif, snapshot())
        assert (b.status, b.problems) == (VifStatus.INACTIVE, (Problem.DOMAIN_INACTIVE,))


def _plausible_host(vifs: tuple[DeclaredVif, ...]) -> tuple[tuple[DeclaredVif, ...], dict[str, Any]]:
    """Give every vif a target and build the links/OVS/networks that would make it bound."""
    links: dict[str, dict[str, Any]] = {}
    networks: dict[str, LibvirtNetwork] = {}
    ovs_ports: list[OvsPort] = []
    ovs_bridges: set[str] = set()
    out: list[DeclaredVif] = []
    for vif in vifs:
        vif = vif if vif.target else dataclasses.replace(vif, target=f"vnet{vif.index}")
        out.append(vif)
        assert vif.target is not None
        want_bridge: str | None = None
        ovs = vif.virtualport == "openvswitch"
        if vif.type == "bridge":
            want_bridge = vif.source
        elif vif.type == "network":
            name = vif.network or ""
            net = networks.setdefault(
                name,
                LibvirtNetwork(
                    name=name,
                    uuid="",
                    active=True,
                    autostart=True,
                    mode="bridge" if ovs else "nat",
                    bridge=f"virbr{len(networks) + 10}",
                    virtualport="openvswitch" if ovs else None,
                ),
            )
            want_bridge = net.bridge
        if want_bridge and ovs:
            ovs_bridges.add(want_bridge)
            links.setdefault(want_bridge, {**tap(want_bridge), "linkinfo": {"info_kind": "openvswitch"}})
            links[vif.target] = tap(vif.target, master="ovs-system")
            ovs_ports.append(OvsPort(name=vif.target, bridge=want_bridge, attached_mac=vif.mac))
        elif want_bridge:
            links.setdefault(want_bridge, bridge(want_bridge))
            links[vif.target] = tap(vif.target, master=want_bridge)
        elif vif.type == "direct" and vif.source:
            links.setdefault(vif.source, phys(vif.source))
            mode = vif.source_mode or "vepa"
            links[vif.target] = macvtap(vif.target, vif.source, KERNEL_MACVTAP_MODE.get(mode, mode))
        elif vif.type == "ethernet":
            links[vif.target] = tap(vif.target)
    host = {
        "links": list(links.values()),
        "networks": list(networks.values()),
        "ovs_ports": ovs_ports,
        "ovs_bridges": sorted(ovs_bridges),
        "ovs_available": True,
    }
    return tuple(out), host


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=_ids(DOMAIN_FILES))
def test_corpus_verdicts_against_plausible_host(path: Path) -> None:
    """Every checkable vif is bound when the host has exactly what its XML asks for."""
    vifs, host = _plausible_host(_parse(path, DomainState.RUNNING))
    snap = snapshot(vifs, **host)
    for b in bind(snap):
        assert b.status in set(VifStatus)
        if b.vif.type in VERIFIABLE:
            assert (b.status, b.problems) == (VifStatus.BOUND, ()), f"#{b.vif.index} {b.vif.type}: {b.detail}"
        else:
            assert b.status is VifStatus.UNVERIFIED
            assert b.problems == (Problem.UNVERIFIED_TYPE,)


@pytest.mark.parametrize("itype", MUST_BE_UNVERIFIED)
def test_unverifiable_types_come_out_unverified_with_reason(itype: str) -> None:
    vifs = [v for v in _all_corpus_vifs() if v.type == itype]
    assert vifs, f"corpus has no type={itype} interface"
    for vif in vifs:
        # Even with a kernel link of the target's name, there is nothing to verify.
        named = dataclasses.replace(vif, target=vif.target or "vnet0")
        snap = snapshot([named], [tap(named.target or "vnet0")])
        b = bind_one(named, snap)
        assert b.status is VifStatus.UNVERIFIED
        assert b.problems == (Problem.UNVERIFIED_TYPE,)
        assert b.detail.strip(), f"{vif.domain}#{vif.index}: unverified without a reason"
        if itype not in BACKEND_TYPES:  # these may name a more precise reason (port profile, passt)
            assert b.detail == UNVERIFIABLE[itype]


# --- networks --------------------------------------------------------------------------------


def _expected_mode(root: ET.Element) -> str:
    forward = root.find("forward")
    if forward is None:
        return "isolated"
    return forward.get("mode") or "nat"


@pytest.mark.parametrize("path", NETWORK_FILES, ids=_ids(NETWORK_FILES))
def test_network_parses(path: Path) -> None:
    root = ET.parse(path).getroot()
    net = parse_network_xml(path.read_text(encoding="utf-8"), active=True, autostart=False)
    assert net.name == (root.findtext("name") or "").strip()
    assert net.uuid == (root.findtext("uuid") or "").strip()
    assert net.mode == _expected_mode(root)
    assert net.kind in ("linux-bridge", "ovs-bridge", "macvtap", "hostdev")
    br = root.find("bridge")
    assert net.bridge == (br.get("name") if br is not None else None)
    assert (net.active, net.autostart) == (True, False)


NETWORK_FACTS = [
    pytest.param("isolated-network.xml", "isolated", "linux-bridge", "virbr2", id="isolated"),
    pytest.param("nat-network.xml", "nat", "linux-bridge", "virbr0", id="nat"),
    pytest.param("netboot-network.xml", "nat", "linux-bridge", "virbr1", id="bare-forward-is-nat"),
    pytest.param("routed-network.xml", "route", "linux-bridge", "virbr1", id="route"),
    pytest.param("open-network.xml", "open", "linux-bridge", "virbr1", id="open"),
    pytest.param("host-bridge-net.xml", "bridge", "linux-bridge", "br0", id="host-bridge"),
    pytest.param("openvswitch-net.xml", "bridge", "ovs-bridge", None, id="openvswitch"),
    pytest.param("vepa-net.xml", "vepa", "macvtap", None, id="vepa-pool"),
    pytest.param("passthrough-pf.xml", "passthrough", "macvtap", None, id="passthrough-pf"),
    pytest.param("8021Qbh-net.xml", "private", "macvtap", None, id="private-pool"),
    pytest.param("hostdev.xml", "hostdev", "hostdev", None, id="hostdev"),
    pytest.param("hostdev-pf-driver-model.xml", "hostdev", "hostdev", None, id="hostdev-pf"),
]


@pytest.mark.parametrize(("fname", "mode", "kind", "bridge_name"), NETWORK_FACTS)
def test_network_mode_and_kind(fname: str, mode: str, kind: str, bridge_name: str | None) -> None:
    net = parse_network_xml((CORPUS / "networks" / fname).read_text(encoding="utf-8"), active=True, autostart=True)
    assert net.mode == mode
    assert net.bridge == bridge_name
    assert net.kind == kind, f"{fname}: mode={net.mode} bridge={net.bridge} virtualport={net.virtualport}"


def test_network_details() -> None:
    def load(name: str) -> LibvirtNetwork:
        return parse_network_xml((CORPUS / "networks" / name).read_text(encoding="utf-8"), active=False, autostart=None)

    iso = load("isolated-network.xml")
    assert iso.addresses == ("192.168.152.1/24",)
    assert [(r.start, r.end) for r in iso.dhcp_ranges] == [("192.168.152.2", "192.168.152.254")]

    ovs = load("openvswitch-net.xml")
    assert ovs.virtualport == "openvswitch"

    vepa = load("vepa-net.xml")
    assert vepa.forward_devs == ("eth1", "eth2", "eth3")
    assert vepa.virtualport == "802.1Qbg"

    pt = load("passthrough-pf.xml")
    assert {"eth10", "eth11"} <= set(pt.forward_devs)

    assert load("nat-network-mtu.xml").mtu == 7000
    assert load("hostdev.xml").forward_devs == ()
    assert "2001:db8:ac10:fd01::1/64" in load("dhcp6-nat-network.xml").addresses


# --- malformed and odd domain XML --------------------------------------------------------------


def _domain(interfaces: str, name: str = "odd", extra: str = "") -> str:
    return (
        f"<domain type='kvm'><name>{name}</name><uuid>11111111-2222-3333-4444-555555555555</uuid>{extra}"
        f"<devices>{interfaces}</devices></domain>"
    )


NOT_A_DOMAIN = [
    pytest.param("this is not xml", id="plain-text"),
    pytest.param("", id="empty"),
    pytest.param("   \n", id="whitespace"),
    pytest.param("<domain><name>x</name><devices><interface type='bridge'>", id="truncated"),
    pytest.param("<network><name>n</name></network>", id="network-root"),
    pytest.param("<capabilities/>", id="other-root"),
    pytest.param("<domain></domain><domain></domain>", id="two-roots"),
]


@pytest.mark.parametrize("text", NOT_A_DOMAIN)
@pytest.mark.parametrize("state", [DomainState.RUNNING, DomainState.SHUTOFF], ids=str)
def test_not_a_domain_raises_domain_xml_error(text: str, state: DomainState) -> None:
    with pytest.raises(DomainXmlError):
        parse_domain_xml(text, state)


ODD_INTERFACES = [
    pytest.param("<interface><mac address='52:54:00:00:00:01'/><target dev='vnet0'/></interface>", id="no-type"),
    pytest.param("<interface type=''><target dev='vnet0'/></interface>", id="empty-type"),
    pytest.param("<interface type='bridge'><source bridge='br0'/><target dev='vnet0'/></interface>", id="no-mac"),
    pytest.param("<interface type='bridge'><mac/><source bridge='br0'/></interface>", id="mac-without-address"),
    pytest.param("<interface type='bridge'><source bridge='br0'/></interface>", id="no-target"),
    pytest.param("<interface type='bridge'><target/></interface>", id="target-without-dev"),
    pytest.param("<interface type='bridge'><target dev='vnet0'/></interface>", id="bridge-no-source"),
    pytest.param("<interface type='bridge'><source/><target dev='vnet0'/></interface>", id="bridge-empty-source"),
    pytest.param("<interface type='network'><target dev='vnet0'/></interface>", id="network-no-source"),
    pytest.param("<interface type='direct'><target dev='macvtap0'/></interface>", id="direct-no-source"),
    pytest.param("<interface type='ethernet'/>", id="bare-ethernet"),
    pytest.param("<interface type='hostdev'><source/></interface>", id="hostdev-empty-source"),
    pytest.param("<interface type='frobnicate'><target dev='vnet0'/></interface>", id="unknown-type"),
    pytest.param(
        "<interface type='bridge'><source bridge='br0'/><target dev='vnet0'/><mtu size='lots'/>"
        "<driver queues='-'/><link/></interface>",
        id="junk-numbers",
    ),
    pytest.param(
        "<interface type='bridge'><source bridge='br0'/><virtualport><parameters/></virtualport>"
        "<target dev='vnet0'/></interface>",
        id="virtualport-without-type",
    ),
    pytest.param(
        "<interface type='network'><source network='n' bridge='' dev=''/><target dev='vnet0'/></interface>",
        id="empty-live-attrs",
    ),
]
ODD_HOSTS = [
    pytest.param({}, id="empty-host"),
    pytest.param(
        {
            "links": [bridge("br0"), tap("vnet0", master="br0"), phys("eth0"), macvtap("macvtap0", "eth0", "vepa")],
            "ovs_available": True,
        },
        id="busy-host",
    ),
]


@pytest.mark.parametrize("host", ODD_HOSTS)
@pytest.mark.parametrize("iface", ODD_INTERFACES)
@pytest.mark.parametrize("state", [DomainState.RUNNING, DomainState.PAUSED, DomainState.SHUTOFF], ids=str)
def test_odd_interfaces_never_crash(iface: str, state: DomainState, host: dict[str, Any]) -> None:
    (vif,) = parse_domain_xml(_domain(iface), state)
    snap = snapshot([vif], **host)
    (b,) = bind(snap)
    assert b.status in set(VifStatus)
    assert b.detail, "every verdict says why"
    if state is DomainState.SHUTOFF:
        assert b.status is VifStatus.INACTIVE


def test_interface_without_type_is_unverified_with_reason() -> None:
    (vif,) = parse_domain_xml(_domain("<interface><target dev='vnet0'/></interface>"), DomainState.RUNNING)
    b = bind_one(vif, snapshot([vif], [tap("vnet0")]))
    assert (b.status, b.problems) == (VifStatus.UNVERIFIED, (Problem.UNVERIFIED_TYPE,))
    assert b.detail


def test_unknown_type_is_unverified_and_named() -> None:
    (vif,) = parse_domain_xml(
        _domain("<interface type='frobnicate'><target dev='vnet0'/></interface>"), DomainState.RUNNING
    )
    assert vif.type == "frobnicate"
    b = bind_one(vif, snapshot([vif], [tap("vnet0")]))
    assert (b.status, b.problems) == (VifStatus.UNVERIFIED, (Problem.UNVERIFIED_TYPE,))
    assert "frobnicate" in b.detail


def test_no_target_in_running_domain_is_missing() -> None:
    (vif,) = parse_domain_xml(
        _domain("<interface type='bridge'><source bridge='br0'/></interface>"), DomainState.RUNNING
    )
    b = bind_one(vif, snapshot([vif], [bridge("br0")]))
    assert (b.status, b.problems) == (VifStatus.MISSING, (Problem.NO_TARGET,))


def test_no_mac_still_bound() -> None:
    (vif,) = parse_domain_xml(
        _domain("<interface type='bridge'><source bridge='br0'/><target dev='vnet0'/></interface>"),
        DomainState.RUNNING,
    )
    assert vif.mac is None
    b = bind_one(vif, snapshot([vif], [bridge("br0"), tap("vnet0", master="br0")]))
    assert b.status is VifStatus.BOUND


def test_mac_is_lowercased() -> None:
    (vif,) = parse_domain_xml(
        _domain("<interface type='bridge'><mac address='52:54:00:AB:CD:EF'/></interface>"), DomainState.RUNNING
    )
    assert vif.mac == "52:54:00:ab:cd:ef"


NON_ASCII_NAMES = [
    pytest.param("wébserveur-ü", id="latin"),
    pytest.param("仮想マシン-日本", id="cjk"),
    pytest.param("виртуалка", id="cyrillic"),
    pytest.param("vm-😀", id="emoji"),
]


@pytest.mark.parametrize("name", NON_ASCII_NAMES)
def test_non_ascii_domain_names(name: str) -> None:
    iface = "<interface type='bridge'><source bridge='brü'/><target dev='vnet0'/></interface>"
    text = "<?xml version='1.0' encoding='UTF-8'?>\n" + _domain(iface, name=name)
    (vif,) = parse_domain_xml(text, DomainState.RUNNING)
    assert vif.domain == name
    assert vif.source == "brü"
    (b,) = bind(snapshot([vif], [bridge("brü"), tap("vnet0", master="brü")]))
    assert b.vif.domain == name
    assert b.status is VifStatus.BOUND


def test_name_and_uuid_override() -> None:
    (vif,) = parse_domain_xml(
        _domain("<interface type='user'/>"), DomainState.PAUSED, name="Ünïcode-from-API", uuid="u-u-i-d"
    )
    assert (vif.domain, vif.domain_uuid, vif.domain_state) == ("Ünïcode-from-API", "u-u-i-d", DomainState.PAUSED)


def test_domain_without_devices_or_name() -> None:
    assert parse_domain_xml("<domain/>", DomainState.RUNNING) == ()
    (vif,) = parse_domain_xml("<domain><devices><interface type='user'/></devices></domain>", DomainState.RUNNING)
    assert vif.domain  # some placeholder, never empty
    assert vif.domain_uuid == ""


def test_huge_interface_count() -> None:
    n = 3000
    ifaces = "".join(
        f"<interface type='bridge'><mac address='52:54:00:00:{i // 256:02x}:{i % 256:02x}'/>"
        f"<source bridge='br0'/><target dev='t{i}'/></interface>"
        for i in range(n)
    )
    vifs = parse_domain_xml(_domain(ifaces), DomainState.RUNNING)
    assert [v.index for v in vifs] == list(range(n))
    links = [bridge("br0")] + [tap(f"t{i}", master="br0") for i in range(0, n, 2)]
    bindings = bind(snapshot(vifs, links))
    assert [b.vif.index for b in bindings] == list(range(n))
    assert [b.status for b in bindings] == [VifStatus.BOUND if i % 2 == 0 else VifStatus.MISSING for i in range(n)]


def test_huge_numbers_do_not_crash() -> None:
    iface = (
        "<interface type='bridge'><source bridge='br0'/><target dev='vnet0'/>"
        "<mtu size='99999999999999999999999'/><driver name='vhost' queues='4294967296'/></interface>"
    )
    (vif,) = parse_domain_xml(_domain(iface, extra="<vcpu>100000000000000000000</vcpu>"), DomainState.RUNNING)
    assert vif.mtu == 99999999999999999999999
    assert vif.queues == 4294967296


@pytest.mark.parametrize(
    ("xml_value", "want"),
    [
        pytest.param("9000", 9000, id="plain"),
        pytest.param("09000", 9000, id="leading-zero"),  # libvirt reads these attributes in base 10
    ],
)
def test_numeric_attributes_are_decimal_like_libvirt(xml_value: str, want: int) -> None:
    iface = (
        f"<interface type='bridge'><source bridge='br0'/><mtu size='{xml_value}'/>"
        f"<driver queues='{xml_value}'/></interface>"
    )
    (vif,) = parse_domain_xml(_domain(iface), DomainState.RUNNING)
    assert (vif.mtu, vif.queues) == (want, want)


# --- malformed and odd network XML -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("nope", id="plain-text"),
        pytest.param("", id="empty"),
        pytest.param("<network><name>x</name>", id="truncated"),
        pytest.param("<domain><name>x</name></domain>", id="domain-root"),
    ],
)
def test_not_a_network_raises_network_xml_error(text: str) -> None:
    with pytest.raises(NetworkXmlError):
        parse_network_xml(text, active=True, autostart=True)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("<network/>", id="empty-network"),
        pytest.param("<network><name>n</name><bridge/><forward mode=''/></network>", id="empty-attrs"),
        pytest.param("<network><name>n</name><mtu size='big'/></network>", id="bad-mtu"),
        pytest.param("<network><name>n</name><ip address='10.0.0.1' netmask='bogus'/></network>", id="bad-mask"),
        pytest.param("<network><name>n</name><ip netmask='255.0.0.0'><dhcp><range/></dhcp></ip></network>", id="no-ip"),
        pytest.param("<network><name>réseau-ü</name><bridge name='virbrü'/></network>", id="non-ascii"),
        pytest.param("<network><name>n</name><forward mode='hostdev'><pf/><interface/></forward></network>", id="devs"),
    ],
)
def test_odd_networks_parse(text: str) -> None:
    net = parse_network_xml(text, active=False, autostart=None)
    assert net.kind in ("linux-bridge", "ovs-bridge", "macvtap", "hostdev")
    assert net.name
    assert "" not in net.forward_devs
