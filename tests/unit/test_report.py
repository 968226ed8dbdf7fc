"""The report layer: summary line, --domain/--problems filters, exit codes, networks report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.ipjson import bridge, snapshot, tap
from vifscope.bind.join import bind
from vifscope.model import (
    DeclaredVif,
    DomainState,
    Expectation,
    LibvirtNetwork,
    Problem,
    SourceError,
    VifBinding,
    VifStatus,
)
from vifscope.report import documents as report
from vifscope.sources.libvirt.netxml import parse_network_xml

CORPUS_NETWORKS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "networks"
_FIRST_PROBLEM = {
    VifStatus.INACTIVE: (Problem.DOMAIN_INACTIVE,),
    VifStatus.MISSING: (Problem.LINK_MISSING,),
    VifStatus.DETACHED: (Problem.DETACHED,),
    VifStatus.MISBOUND: (Problem.MISBOUND,),
    VifStatus.DOWN: (Problem.TAP_DOWN,),
    VifStatus.BOUND: (),
    VifStatus.UNVERIFIED: (Problem.UNVERIFIED_TYPE,),
}


def _binding(
    status: VifStatus,
    domain: str = "vm",
    index: int = 0,
    uuid: str = "",
    problems: tuple[Problem, ...] | None = None,
) -> VifBinding:
    vif = DeclaredVif(
        domain=domain,
        domain_uuid=uuid or f"uuid-{domain}",
        domain_state=DomainState.SHUTOFF if status is VifStatus.INACTIVE else DomainState.RUNNING,
        index=index,
        type="bridge",
        mac="52:54:00:00:00:01",
        source="br0",
        target=f"{domain}-{index}",
    )
    return VifBinding(
        vif,
        Expectation("linux-bridge", bridge="br0"),
        status,
        _FIRST_PROBLEM[status] if problems is None else problems,
        "test",
    )


def _many(**counts: int) -> list[VifBinding]:
    out: list[VifBinding] = []
    for status_name, n in counts.items():
        out.extend(_binding(VifStatus(status_name), index=len(out) + i) for i in range(n))
    return out


# --- summary line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bindings", "line"),
    [
        pytest.param(_many(bound=10, detached=1, down=1), "12 vifs: 10 bound, 1 detached, 1 down", id="issue-example"),
        pytest.param(_many(down=1, detached=1, bound=10), "12 vifs: 10 bound, 1 detached, 1 down", id="input-order"),
        pytest.param(_many(bound=1), "1 vif: 1 bound", id="singular"),
        pytest.param([], "0 vifs", id="none"),
        pytest.param(
            _many(inactive=2, unverified=1, down=1, misbound=1, detached=1, missing=1, bound=3),
            "10 vifs: 3 bound, 1 missing, 1 detached, 1 misbound, 1 down, 1 unverified, 2 inactive",
            id="every-status",
        ),
        pytest.param(_many(inactive=2), "2 vifs: 2 inactive", id="only-inactive"),
    ],
)
def test_summary_line(bindings: list[VifBinding], line: str) -> None:
    assert report.summary_line(bindings) == line


# --- status --problems: the last line says what is wrong, or in words what is right --------------

_OVS_DOWN = _binding(VifStatus.UNVERIFIED, "sw", 9, problems=(Problem.SOURCE_UNAVAILABLE,))


@pytest.mark.parametrize(
    ("scope", "line"),
    [
        pytest.param(_many(bound=7), "no problems: all 7 running vifs bound", id="all-bound"),
        pytest.param(_many(bound=1), "no problems: 1 running vif, bound", id="one-bound"),
        pytest.param(
            _many(bound=7, inactive=2), "no problems: all 7 running vifs bound, 2 inactive (domain not running)",
            id="some-inactive",
        ),
        pytest.param(
            _many(bound=7, unverified=1, inactive=2),
            "no problems: 7 of 8 running vifs bound, 1 unverified (interface type not checked), "
            "2 inactive (domain not running)",
            id="some-unverified",
        ),
        pytest.param(
            _many(unverified=2), "no problems: 2 running vifs, all unverified (interface type not checked)",
            id="only-unverified",
        ),
        pytest.param(_many(inactive=3), "no problems, nothing running: 3 vifs inactive (domain not running)",
                     id="nothing-running"),
        pytest.param(_many(inactive=1), "no problems, nothing running: 1 vif inactive (domain not running)",
                     id="nothing-running-one"),
        pytest.param([], "no problems: no vifs to check", id="no-vifs"),
        pytest.param(
            _many(bound=9, inactive=1, detached=1, down=1),
            "2 of 12 vifs have problems: 1 detached, 1 down; not listed: 9 bound, 1 inactive",
            id="problems",
        ),
        pytest.param(
            _many(bound=9, detached=1, unverified=1),
            "1 of 11 vifs has a problem: 1 detached; also listed: 1 unverified (interface type not checked); "
            "not listed: 9 bound",
            id="problem-and-unverified-type",
        ),
        pytest.param(_many(missing=1), "1 of 1 vif has a problem: 1 missing", id="only-problem"),
        pytest.param(
            [*_many(bound=2), _OVS_DOWN],
            "1 of 3 vifs has a problem: 1 unverified; not listed: 2 bound",
            id="unverified-for-want-of-a-source-is-a-problem",
        ),
    ],
)  # fmt: skip
def test_problems_summary(scope: list[VifBinding], line: str) -> None:
    assert report.problems_summary(scope) == line
    assert report.status_summary(scope, problems_only=True) == line
    assert report.status_summary(scope, problems_only=False) == report.summary_line(scope)


def test_problems_summary_agrees_with_the_exit_code() -> None:
    """'no problems' exactly when ``status`` exits 0, whatever mix of verdicts."""
    snap = snapshot()
    for scope in (_many(bound=3, unverified=1, inactive=1), _many(bound=3, down=1), [*_many(bound=1), _OVS_DOWN]):
        assert report.problems_summary(scope).startswith("no problems") == (report.exit_code(snap, scope) == 0)


def test_status_problems_cli_counts_what_the_filter_hid(tmp_path: Path) -> None:
    """The real ``status --problems`` on a node file: the summary counts the vifs the filter left out."""
    iface = (
        "<interface type='bridge'><mac address='52:54:00:0{i}:00:01'/><source bridge='vs-nobr'/>"
        "<target dev='vs-nolink{i}'/></interface>"
    )
    doms = [
        f"<domain type='test'><name>vs-off{i}</name><memory>65536</memory><os><type>hvm</type></os>"
        f"<devices>{iface.format(i=i)}</devices><test:runstate>5</test:runstate></domain>"
        for i in range(2)
    ]
    node = tmp_path / "node.xml"
    node.write_text(f"<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>{''.join(doms)}</node>")
    cmd = [sys.executable, "-m", "vifscope", "-c", f"test://{node}", "status", "--problems"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no problems, nothing running: 2 vifs inactive (domain not running)"


# --- select: --domain / --problems -------------------------------------------------------------

SELECT_SET = [
    _binding(VifStatus.BOUND, "web", 0, "u-web"),
    _binding(VifStatus.DETACHED, "web", 1, "u-web"),
    _binding(VifStatus.BOUND, "db", 0, "u-db"),
    _binding(VifStatus.INACTIVE, "old", 0, "u-old"),
    _binding(VifStatus.UNVERIFIED, "dpdk", 0, "u-dpdk"),
    _binding(VifStatus.DOWN, "wébserveur-ü", 0, "u-fr"),
]


def _keys(bindings: tuple[VifBinding, ...]) -> list[tuple[str, int]]:
    return [(b.vif.domain, b.vif.index) for b in bindings]


@pytest.mark.parametrize(
    ("domains", "problems_only", "want"),
    [
        pytest.param((), False, [(b.vif.domain, b.vif.index) for b in SELECT_SET], id="no-filter"),
        pytest.param(("web",), False, [("web", 0), ("web", 1)], id="by-name"),
        pytest.param(("u-db",), False, [("db", 0)], id="by-uuid"),
        pytest.param(("web", "u-db"), False, [("web", 0), ("web", 1), ("db", 0)], id="name-and-uuid"),
        pytest.param(("wébserveur-ü",), False, [("wébserveur-ü", 0)], id="non-ascii-name"),
        pytest.param(("nope",), False, [], id="unknown-domain"),
        pytest.param(("WEB",), False, [], id="names-are-case-sensitive"),
        pytest.param((), True, [("web", 1), ("dpdk", 0), ("wébserveur-ü", 0)], id="problems"),
        pytest.param(("web",), True, [("web", 1)], id="domain-and-problems"),
        pytest.param(("db", "old"), True, [], id="healthy-domains-with-problems"),
    ],
)
def test_select(domains: tuple[str, ...], problems_only: bool, want: list[tuple[str, int]]) -> None:
    assert _keys(report.select(SELECT_SET, domains, problems_only)) == want


# --- exit codes --------------------------------------------------------------------------------

LIBVIRT_DOWN = SourceError("libvirt", "cannot connect to libvirt at qemu:///system: No such file", "start libvirtd")
NETLINK_DOWN = SourceError("netlink", "the 'ip' command (iproute2) is not installed", "install iproute2")
OVS_DOWN = SourceError("ovs", "database connection failed", "start ovsdb-server")


@pytest.mark.parametrize(
    ("bindings", "errors", "code"),
    [
        pytest.param([], [], 0, id="nothing-at-all"),
        pytest.param(_many(bound=3), [], 0, id="all-bound"),
        pytest.param(_many(bound=2, inactive=1), [], 0, id="bound-and-inactive"),
        pytest.param(_many(bound=2, unverified=1), [], 0, id="unverified-by-type-alone"),
        pytest.param(_many(unverified=2), [], 0, id="only-unverified-by-type"),
        pytest.param(_many(bound=2, detached=1), [], 1, id="one-detached"),
        pytest.param(_many(bound=2, missing=1), [], 1, id="one-missing"),
        pytest.param(_many(misbound=1), [], 1, id="one-misbound"),
        pytest.param(_many(down=1, inactive=3), [], 1, id="one-down"),
        pytest.param([], [LIBVIRT_DOWN], 3, id="libvirt-down"),
        pytest.param(_many(bound=1), [NETLINK_DOWN], 3, id="netlink-down"),
        pytest.param(_many(detached=1), [NETLINK_DOWN], 3, id="source-beats-problems"),
        pytest.param(_many(bound=2), [OVS_DOWN], 0, id="ovs-down-but-not-needed"),
        pytest.param(
            _many(bound=2),
            [SourceError("libvirt-domain", "domain vs-gone: Domain not found")],
            0,
            id="one-domain-vanished-mid-read-is-not-exit-3",
        ),
        pytest.param(
            [*_many(bound=1), _binding(VifStatus.UNVERIFIED, "ovs", problems=(Problem.SOURCE_UNAVAILABLE,))],
            [OVS_DOWN],
            3,
            id="ovs-down-and-needed",
        ),
    ],
)
def test_exit_code(bindings: list[VifBinding], errors: list[SourceError], code: int) -> None:
    assert report.exit_code(snapshot(errors=errors), bindings) == code


def test_exit_codes_from_real_bindings() -> None:
    """The same rules end to end through bind(): a detached tap is 1, fixing it gives 0."""
    vif = DeclaredVif("vm", "u", DomainState.RUNNING, 0, "bridge", "52:54:00:00:00:01", source="br0", target="t0")
    hostdev = DeclaredVif("vm", "u", DomainState.RUNNING, 1, "hostdev", "52:54:00:00:00:02")
    broken = snapshot([vif, hostdev], [bridge("br0"), tap("t0")])
    fixed = snapshot([vif, hostdev], [bridge("br0"), tap("t0", master="br0")])
    assert report.exit_code(broken, bind(broken)) == 1
    assert report.exit_code(fixed, bind(fixed)) == 0


def test_exit_code_constants() -> None:
    assert (report.EXIT_OK, report.EXIT_PROBLEMS, report.EXIT_USAGE, report.EXIT_SOURCE) == (0, 1, 2, 3)


# --- status report -----------------------------------------------------------------------------


def test_status_report_document() -> None:
    vif = DeclaredVif(
        "vm", "u-vm", DomainState.RUNNING, 0, "direct", "52:54:00:00:00:01", source="eth0", source_mode="bridge"
    )
    snap = snapshot([vif], errors=[OVS_DOWN])
    doc = report.status_report(snap, bind(snap))
    assert doc["host"] == "testhost"
    assert doc["uri"] == "qemu:///system"
    assert doc["taken_at"] == "2026-01-02T03:04:05+00:00"
    assert doc["source_errors"] == [
        {"source": "ovs", "error": "database connection failed", "hint": "start ovsdb-server"}
    ]
    (v,) = doc["vifs"]
    assert (v["domain"], v["domain_uuid"], v["domain_state"], v["type"]) == ("vm", "u-vm", "running", "direct")
    assert (v["source"], v["bridge"], v["network"], v["target"]) == ("eth0", None, None, None)
    assert (v["status"], v["problems"]) == ("missing", ["no_target"])
    assert v["observed"]["present"] is False
    assert doc["summary"] == {"missing": 1}


# --- networks report ---------------------------------------------------------------------------


def _net(
    fname: str, *, active: bool = True, autostart: bool | None = True, leases: int | None = None
) -> LibvirtNetwork:
    text = (CORPUS_NETWORKS / fname).read_text(encoding="utf-8")
    return parse_network_xml(text, active=active, autostart=autostart, leases=leases)


NETWORK_KEYS = {
    "name",
    "uuid",
    "mode",
    "kind",
    "bridge",
    "forward_devs",
    "active",
    "autostart",
    "addresses",
    "dhcp_ranges",
    "leases",
    "bridge_exists",
    "bridge_up",
    "mtu",
}


def test_networks_report_fields() -> None:
    ovs = LibvirtNetwork("vs-ovsnet", "u-ovs", True, True, "bridge", "vs-ovs0", virtualport="openvswitch")
    nets = [
        _net("nat-network.xml", leases=2),  # virbr0 exists and is up
        _net("isolated-network.xml", autostart=False),  # virbr2 exists, admin down
        _net("routed-network.xml", active=False, autostart=None),  # virbr1 does not exist
        _net("vepa-net.xml"),  # macvtap pool: no bridge
        _net("hostdev.xml"),
        ovs,
    ]
    snap = snapshot(
        links=[bridge("virbr0"), bridge("virbr2", up=False)],
        networks=nets,
        ovs_bridges=["vs-ovs0"],
        ovs_available=True,
    )
    doc = report.networks_report(snap)
    assert {"host", "uri", "taken_at", "networks", "source_errors"} <= doc.keys()
    by_name = {n["name"]: n for n in doc["networks"]}
    for n in doc["networks"]:
        assert n.keys() >= NETWORK_KEYS, sorted(NETWORK_KEYS - n.keys())

    nat = by_name["default"]
    assert (nat["mode"], nat["kind"], nat["bridge"]) == ("nat", "linux-bridge", "virbr0")
    assert (nat["active"], nat["autostart"], nat["leases"]) == (True, True, 2)
    assert nat["dhcp_ranges"] == [{"start": "192.168.122.2", "end": "192.168.122.254"}]
    assert nat["addresses"] == ["192.168.122.1/24"]
    assert (nat["bridge_exists"], nat["bridge_up"]) == (True, True)

    iso = by_name["private"]
    assert (iso["mode"], iso["autostart"]) == ("isolated", False)
    assert (iso["bridge_exists"], iso["bridge_up"]) == (True, False)

    routed = by_name["local"]
    assert (routed["mode"], routed["active"], routed["autostart"], routed["leases"]) == ("route", False, None, None)
    assert (routed["bridge_exists"], routed["bridge_up"]) == (False, False)

    vepa = by_name["vepa-net"]
    assert (vepa["mode"], vepa["kind"], vepa["bridge"]) == ("vepa", "macvtap", None)
    assert vepa["forward_devs"] == ["eth1", "eth2", "eth3"]
    assert (vepa["bridge_exists"], vepa["bridge_up"]) == (None, None)

    assert (by_name["hostdev"]["mode"], by_name["hostdev"]["kind"]) == ("hostdev", "hostdev")

    o = by_name["vs-ovsnet"]
    assert (o["mode"], o["kind"], o["bridge"]) == ("ovs", "ovs-bridge", "vs-ovs0")
    assert (o["bridge_exists"], o["bridge_up"]) == (True, True)


@pytest.mark.parametrize(
    ("links", "active", "errors", "code"),
    [
        pytest.param([bridge("virbr0")], True, [], 0, id="bridge-up"),
        pytest.param([bridge("virbr0", up=False)], True, [], 1, id="bridge-down"),
        pytest.param([], True, [], 1, id="bridge-missing"),
        pytest.param([], False, [], 0, id="inactive-network-without-bridge"),
        pytest.param([bridge("virbr0")], True, [LIBVIRT_DOWN], 3, id="libvirt-down"),
    ],
)
def test_networks_exit_code(links: list[dict[str, object]], active: bool, errors: list[SourceError], code: int) -> None:
    snap = snapshot(links=links, networks=[_net("nat-network.xml", active=active)], errors=errors)
    assert report.networks_exit_code(snap) == code
