"""vhost-user and SR-IOV: the parsers and readers of sources/ (on real files, sockets and
symlinks in a temp dir) and the pure verdicts of bind/backends.py."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.ipjson import snapshot
from vifscope.bind.join import bind_one
from vifscope.model import (
    BackendFacts,
    DeclaredVif,
    DomainState,
    LibvirtNetwork,
    PciFunction,
    Problem,
    QemuProcess,
    SocketHolder,
    UnixSocketFact,
    VfConfig,
    VifStatus,
)
from vifscope.sources.backends import is_local, read_backends, wanted
from vifscope.sources.jsonshape import JsonShapeError
from vifscope.sources.kernel.sriov import parse_vf_table, read_pci_function
from vifscope.sources.kernel.unixsock import parse_proc_net_unix, read_unix_sockets
from vifscope.sources.libvirt.domxml import parse_domain_xml

PROC_NET_UNIX = """Num       RefCount Protocol Flags    Type St Inode Path
ffff8f2a00000000: 00000002 00000000 00010000 0001 01 21001 /run/a.sock
ffff8f2a00000001: 00000003 00000000 00000000 0001 03 21002 /run/a.sock
ffff8f2a00000002: 00000003 00000000 00000000 0001 03 21003
ffff8f2a00000003: 00000002 00000000 00010000 0005 01 21004 /run/with space.sock
ffff8f2a00000004: 00000002 00000000 00010000 0001 01 21005 @abstract
ffff8f2a00000005: 00000003 00000000 00000000 0001 02     0 /run/a.sock
"""


def test_proc_net_unix_lines_with_a_path() -> None:
    got = parse_proc_net_unix(PROC_NET_UNIX)
    assert [(e.inode, e.listening, e.connected, e.pending, e.path) for e in got] == [
        (21001, True, False, False, "/run/a.sock"),
        (21002, False, True, False, "/run/a.sock"),
        (21004, True, False, False, "/run/with space.sock"),
        (21005, True, False, False, "@abstract"),
        (0, False, False, True, "/run/a.sock"),
    ]


def test_unix_sockets_read_for_real(tmp_path: Path) -> None:
    """A listener this process holds, one connection, a stale socket file, a regular file."""
    live, stale, plain = tmp_path / "live.sock", tmp_path / "stale.sock", tmp_path / "plain"
    with socket.socket(socket.AF_UNIX) as srv, socket.socket(socket.AF_UNIX) as cli:
        srv.bind(str(live))
        srv.listen(1)
        cli.connect(str(live))
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(stale))
        plain.write_text("x")
        (waiting,) = read_unix_sockets([str(live)])
        conn, _ = srv.accept()
        with conn:
            facts = {f.path: f for f in read_unix_sockets([str(live), str(stale), str(plain), str(tmp_path / "none")])}
    assert (waiting.listening, waiting.connections, waiting.pending) == (True, 0, 1)  # connected, not accepted
    me = facts[str(live)]
    assert (me.exists, me.is_socket, me.listening, me.connections, me.pending) == (True, True, True, 1, 0)
    assert os.getpid() in [h.pid for h in me.holders]
    assert (facts[str(stale)].is_socket, facts[str(stale)].listening) == (True, False)
    assert (facts[str(plain)].exists, facts[str(plain)].is_socket) == (True, False)
    assert facts[str(tmp_path / "none")].exists is False


VF_JSON = [
    {"vf": 0, "link_type": "ether", "address": "52:54:00:5A:00:00", "broadcast": "ff:ff:ff:ff:ff:ff",
     "vlan_list": [{"vlan": 42, "qos": 3}], "spoofchk": True, "link_state": "auto", "trust": False},
    {"vf": 1, "link_type": "ether", "address": "00:00:00:00:00:00", "vlan_list": [{}], "link_state": "disable"},
    {"vf": 2, "mac": "52:54:00:5a:00:02", "vlan": 7, "spoofchk": False},  # iproute2 < 4.16
]  # fmt: skip


def test_vf_table_current_and_legacy_iproute2_shapes() -> None:
    got = parse_vf_table("enp3s0f0", {"ifname": "enp3s0f0", "vfinfo_list": VF_JSON})
    assert got == (
        VfConfig("enp3s0f0", 0, "52:54:00:5a:00:00", 42, 3, True, False, "auto"),
        VfConfig("enp3s0f0", 1, "00:00:00:00:00:00", 0, 0, None, None, "disable"),
        VfConfig("enp3s0f0", 2, "52:54:00:5a:00:02", 7, 0, False, None, None),
    )
    assert parse_vf_table("eth0", {"ifname": "eth0"}) == ()


@pytest.mark.parametrize("bad", [[{"address": "x"}], [{"vf": "0"}], [{"vf": 0, "trust": "yes"}], {"vf": 0}])
def test_vf_table_of_another_shape_is_one_error(bad: object) -> None:
    with pytest.raises(JsonShapeError):
        parse_vf_table("pf", {"vfinfo_list": bad})


def test_pci_function_from_the_sysfs_layout(tmp_path: Path) -> None:
    """The kernel's layout: /sys/bus/pci/devices/ADDR -> ../../../devices/...; physfn, virtfnN, net/."""
    base = tmp_path / "devices" / "pci0000:00" / "0000:00:03.0"
    devs = tmp_path / "bus" / "pci" / "devices"
    (base / "0000:03:00.0" / "net" / "enp3s0f0").mkdir(parents=True)
    devs.mkdir(parents=True)
    for n, vf in enumerate(["0000:03:10.0", "0000:03:10.2"]):
        (base / vf).mkdir()
        (base / vf / "physfn").symlink_to("../0000:03:00.0")
        (base / "0000:03:00.0" / f"virtfn{n}").symlink_to(f"../{vf}")
        (devs / vf).symlink_to(f"../../../devices/pci0000:00/0000:00:03.0/{vf}")
    (devs / "0000:03:00.0").symlink_to("../../../devices/pci0000:00/0000:00:03.0/0000:03:00.0")
    assert read_pci_function("0000:03:10.2", tmp_path) == PciFunction(
        "0000:03:10.2", True, "0000:03:00.0", ("enp3s0f0",), 1, None
    )
    assert read_pci_function("0000:03:00.0", tmp_path) == PciFunction("0000:03:00.0", True)  # the PF: no physfn
    assert read_pci_function("0000:09:00.0", tmp_path).exists is False


def test_hostdev_xml_pci_address_and_vlan() -> None:
    xml = """<domain><name>d</name><devices>
      <interface type='hostdev'><mac address='52:54:00:00:00:01'/>
        <source><address type='pci' domain='0' bus='3' slot='0x10' function='2'/></source>
        <vlan><tag id='42'/></vlan></interface></devices></domain>"""
    (vif,) = parse_domain_xml(xml, DomainState.RUNNING)
    assert (vif.source, vif.vlan_tags) == ("0000:03:10.2", (42,))


def vif(itype: str, source: str | None, **kw: object) -> DeclaredVif:
    return DeclaredVif("d", "u", DomainState.RUNNING, 0, itype, "52:54:00:00:00:01", source=source, **kw)  # type: ignore[arg-type]


def test_only_local_hosts_and_only_what_the_vifs_name_are_read() -> None:
    user = vif("vhostuser", "/run/x.sock", source_mode="server")
    off = replace(user, domain_state=DomainState.SHUTOFF, source="/run/off.sock")
    pool = LibvirtNetwork("pool", "u", True, True, "hostdev", None, forward_devs=("enp3s0f0",))
    w = wanted([user, off, vif("network", "pool", network="pool")], [pool])
    assert (w.sockets, w.socket_domains, w.pfs) == (("/run/x.sock",), ("d",), ("enp3s0f0",))
    assert read_backends([user], [], "qemu+ssh://other/system") == (None, ())
    assert read_backends([vif("bridge", "br0")], [], "qemu:///system") == (None, ())
    assert is_local("test:///tmp/node.xml") and not is_local("qemu+tcp://h/system")


def with_backends(v: DeclaredVif, facts: BackendFacts) -> VifStatus:
    snap = replace(snapshot([v]), backends=facts)
    return bind_one(v, snap).status


def test_no_facts_is_unverified_never_bound() -> None:
    for v in (vif("vhostuser", "/run/x.sock", source_mode="client"), vif("hostdev", "0000:03:10.0")):
        b = bind_one(v, snapshot([v]))
        assert (b.status, b.problems) == (VifStatus.UNVERIFIED, (Problem.UNVERIFIED_TYPE,))
        assert bind_one(v, replace(snapshot([v]), backends=BackendFacts())).status is VifStatus.UNVERIFIED


def test_server_mode_socket_must_be_held_by_the_domains_qemu() -> None:
    v = vif("vhostuser", "/run/x.sock", source_mode="server")
    sock = UnixSocketFact(
        "/run/x.sock", exists=True, is_socket=True, listening=True, connections=1, holders=(SocketHolder(42, "qemu"),)
    )
    assert with_backends(v, BackendFacts(sockets=(sock,))) is VifStatus.BOUND  # pid unknown: not compared
    mine = BackendFacts(sockets=(sock,), qemu=(replace_qemu("d", 42),))
    assert with_backends(v, mine) is VifStatus.BOUND
    other = BackendFacts(sockets=(sock,), qemu=(replace_qemu("d", 7),))
    assert with_backends(v, other) is VifStatus.MISBOUND


def replace_qemu(domain: str, pid: int) -> QemuProcess:
    return QemuProcess(domain, pid)


def test_vf_found_by_address_compared_on_mac_and_vlan() -> None:
    v = vif("hostdev", "0000:03:10.2", vlan_tags=(42,))
    fn = PciFunction("0000:03:10.2", True, "0000:03:00.0", ("enp3s0f0",), 1)
    good = VfConfig("enp3s0f0", 1, "52:54:00:00:00:01", 42)
    facts = BackendFacts(pci=(fn,), vfs=(good,), pfs_read=("enp3s0f0",))
    assert with_backends(v, facts) is VifStatus.BOUND
    assert with_backends(v, replace(facts, vfs=(replace(good, vlan=0),))) is VifStatus.MISBOUND
    assert with_backends(v, replace(facts, vfs=())) is VifStatus.MISSING
    assert with_backends(v, replace(facts, pfs_read=())) is VifStatus.UNVERIFIED


def test_hostdev_network_pool_by_mac_and_an_empty_pool() -> None:
    pool = LibvirtNetwork("pool", "u", True, True, "hostdev", None, forward_devs=("enp3s0f0",), vlan_tags=(7,))
    v = vif("network", "pool", network="pool")
    facts = BackendFacts(pci=(), vfs=(VfConfig("enp3s0f0", 4, "52:54:00:00:00:01", 7),), pfs_read=("enp3s0f0",))
    snap = replace(snapshot([v], networks=[pool]), backends=facts)
    assert bind_one(v, snap).status is VifStatus.BOUND
    assert bind_one(v, replace(snap, backends=replace(facts, vfs=()))).problems == (Problem.VF_MISSING,)
    empty = replace(snap, networks=(replace(pool, forward_devs=()),))
    b = bind_one(v, empty)
    assert (b.status, b.problems) == (VifStatus.UNVERIFIED, (Problem.UNVERIFIED_TYPE,))
