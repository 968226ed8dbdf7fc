"""The rtnetlink reader and iproute2's JSON give the same ObservedLink for real links.

A private netns gets one link of every kind vifscope reads differently: a bridge with STP
on, a port isolated and one not, a veth whose peer sits in another namespace (IFLA_LINK_NETNSID),
a persistent tap (no carrier), a macvtap and a macvlan on a veth lower, loopback. Both
readers run on the same namespace; every field must agree (counters aside: the kernel may
count a packet between the two dumps).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from vifscope.model import ObservedLink

pytestmark = pytest.mark.integration

BATCH = """\
link add vs-pbr type bridge stp_state 1 forward_delay 400
link add vs-pbr2 type bridge stp_state 0
link set vs-pbr up
link add vs-pv0 type veth peer name vs-pv0p
link set vs-pv0 master vs-pbr
link set vs-pv0 type bridge_slave isolated on
link set vs-pv0 up
link set vs-pv0p up
link add vs-pv1 type veth peer name vs-pv1p netns {outer}
link set vs-pv1 master vs-pbr
link set vs-pv1 up
tuntap add dev vs-ptap mode tap
link set vs-ptap master vs-pbr2
link set vs-ptap mtu 9000 up
link add link vs-pv0p name vs-pmvt type macvtap mode bridge
link add link vs-pv0p name vs-pmvl address 52:54:00:12:34:56 type macvlan mode private
link set vs-pmvt up
link set lo up
addr add 10.99.0.1/24 dev vs-pbr
addr add 10.99.1.1/32 peer 10.99.1.2 dev vs-pv0
addr add fd00:99::1/64 dev vs-pbr nodad
addr add 169.254.7.1/16 dev vs-pbr
addr add 10.99.2.1/24 dev vs-pbr2 scope link
"""

READ = """
import dataclasses, json, sys
from vifscope.sources.kernel.links import parse_links, read_links
import subprocess
raw = read_links()
js = parse_links(json.loads(subprocess.run(["ip", "-j", "-s", "-d", "link", "show"],
    capture_output=True, text=True, check=True).stdout))
print(json.dumps([[dataclasses.asdict(l) for l in raw], [dataclasses.asdict(l) for l in js]]))
"""


@pytest.fixture
def netns():  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    ns, outer = f"vs-pl{os.getpid()}", f"vs-plo{os.getpid()}"
    for name in (ns, outer):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=BATCH.format(outer=outer), text=True, check=True)
        yield ns
    finally:
        for name in (ns, outer):
            subprocess.run(["ip", "netns", "del", name], check=False)


def both(ns: str) -> tuple[dict[str, ObservedLink], dict[str, ObservedLink]]:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", READ], capture_output=True, text=True, check=True
    ).stdout
    raw, js = json.loads(out)

    def by_name(rows: list[dict[str, object]]) -> dict[str, ObservedLink]:
        return {str(r["name"]): ObservedLink(**{**r, "stats": None}) for r in rows}  # type: ignore[arg-type]

    return by_name(raw), by_name(js)


def test_every_link_reads_the_same_both_ways(netns: str) -> None:
    raw, js = both(netns)
    assert raw.keys() == js.keys()
    assert {"lo", "vs-pbr", "vs-pv0", "vs-pv1", "vs-ptap", "vs-pmvt", "vs-pmvl"} <= raw.keys()
    for name in raw:
        assert dataclasses.asdict(raw[name]) == dataclasses.asdict(js[name]), name


def test_the_fields_that_differ_between_kinds_are_really_read(netns: str) -> None:
    """Guards against two readers agreeing on None: each kind's own field has a value."""
    raw, _ = both(netns)
    assert (raw["vs-pbr"].kind, raw["vs-pbr"].stp_state, raw["vs-pbr"].forward_delay) == ("bridge", 1, 400)
    assert raw["vs-pv0"].isolated is True and raw["vs-pv1"].isolated is False
    assert raw["vs-pv0"].slave_kind == "bridge" and raw["vs-pv0"].port_state is not None
    assert raw["vs-pv1"].master == "vs-pbr" and raw["vs-pv1"].lower is None  # peer in another netns
    assert raw["vs-pmvt"].kind == "macvtap" and raw["vs-pmvt"].macvtap_mode == "bridge"
    assert raw["vs-pmvt"].lower == "vs-pv0p"
    assert (raw["vs-pmvl"].macvtap_mode, raw["vs-pmvl"].mac) == ("private", "52:54:00:12:34:56")
    tap = raw["vs-ptap"]
    assert (tap.kind, tap.mtu, tap.admin_up, tap.carrier, tap.master) == ("tun", 9000, True, False, "vs-pbr2")
    assert raw["lo"].oper_state == "unknown" and raw["lo"].mac == "00:00:00:00:00:00"


ADDRS = """
import json
from vifscope.sources.kernel import addrdump
from vifscope.sources.kernel import iproute
key = lambda a: (a.dev, a.address)
print(json.dumps([[list(key(a)) + [a.family] for a in sorted(r(), key=key)]
                  for r in (lambda: addrdump.read_addresses(link_local=True), iproute.read_addresses,
                            addrdump.read_addresses)]))
"""


def test_addresses_read_the_same_as_ip_addr_show(netns: str) -> None:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", ADDRS], capture_output=True, text=True, check=True
    ).stdout
    raw, js, default = json.loads(out)
    assert raw == js
    assert any(a[1].startswith("fe80:") for a in raw)  # the up links' own link-local addresses
    assert default == [a for a in raw if not a[1].startswith(("fe80:", "169.254."))]  # what doctor reads
    assert ["vs-pbr2", "10.99.2.1/24", "inet"] in default  # link scope, not link-local: kept
    assert ["vs-pbr", "10.99.0.1/24", "inet"] in raw and ["vs-pbr", "fd00:99::1/64", "inet6"] in raw
    assert ["vs-pv0", "10.99.1.1/32", "inet"] in raw  # a peer address: IFA_LOCAL, not IFA_ADDRESS


def test_counters_are_read(netns: str) -> None:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c",
         "from vifscope.sources.kernel.links import read_links\n"
         "import subprocess\n"
         "subprocess.run(['ping', '-c', '3', '-i', '0.01', '-q', '127.0.0.1'], capture_output=True)\n"
         "print([l.stats.rx_packets for l in read_links() if l.name == 'lo'][0])"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert int(out) >= 6  # 3 echo requests + 3 replies, all through lo
