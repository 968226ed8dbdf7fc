"""CheckContext's per-bridge answers that checks ask for every vif: the same result as
working each one out, whatever the port's place on the bridge."""

from __future__ import annotations

import subprocess
from dataclasses import replace

from tests.unit.ipjson import bridge, phys, snapshot, tap
from vifscope.bind.join import bind
from vifscope.checks import CHECKS_BY_ID
from vifscope.checks.base import CheckContext
from vifscope.checks.security import port_not_isolated
from vifscope.model import DeclaredVif, DomainState, HostFacts, NwfilterDef

TAPS = [f"vs-p{i}" for i in range(12)]


def _ctx() -> CheckContext:
    links = [bridge("vs-br"), phys("vs-up"), *(tap(t, master="vs-br") for t in TAPS)]
    links[1]["master"] = "vs-br"
    return CheckContext(snapshot(links=links), ())


def _expected(me: str) -> tuple[int, str]:
    others = [t for t in TAPS if t != me]
    shown = others[:8]
    return len(others), ", ".join(shown) + f" (+{len(others) - len(shown)} more)"


def test_peers_for_every_port_and_for_a_stranger() -> None:
    ctx = _ctx()
    for me in [*TAPS, *reversed(TAPS)]:  # listed ports, ports past the list, twice (cached)
        assert ctx.peers("vs-br", me) == _expected(me), me
    count, text = ctx.peers("vs-br", "vs-not-a-port")
    assert count == len(TAPS) and text.startswith(", ".join(TAPS[:8])) and text.endswith("(+4 more)")
    assert ctx.peers("vs-no-bridge", "vs-p0") == (0, "")


def test_filter_closure_follows_references_once_per_filter() -> None:
    defs = (
        NwfilterDef("clean-traffic", ("no-mac-spoofing", "no-ip-spoofing", "allow-incoming-ipv4")),
        NwfilterDef("no-mac-spoofing", ()),
        NwfilterDef("no-ip-spoofing", ("clean-traffic",)),  # a cycle is cut
        NwfilterDef("allow-incoming-ipv4", ()),
    )
    snap = snapshot()
    assert CheckContext(snap, ()).filter_closure("x") == {"x"}  # no definitions read
    ctx = CheckContext(replace(snap, facts=HostFacts(nwfilters=defs, nwfilter_bindings=())), ())
    want = {"clean-traffic", "no-mac-spoofing", "no-ip-spoofing", "allow-incoming-ipv4"}
    assert ctx.filter_closure("clean-traffic") == want
    assert ctx.filter_closure("clean-traffic") is ctx.filter_closure("clean-traffic")
    assert ctx.filter_closure("no-ip-spoofing") == want


def test_shared_bridge_fix_quotes_the_bridge_name_and_counts_every_open_tap() -> None:
    """A bridge name is any string the kernel accepts, "$(...)" included: the fix must not run it."""
    br = "vs-b$(x)"
    vifs = [
        DeclaredVif(
            "vs-d", "u-1", DomainState.RUNNING, i, "bridge", f"52:54:00:00:00:0{i}", source=br, target=f"vs-t{i}"
        )
        for i in range(2)
    ]
    links = [bridge(br), *(tap(f"vs-t{i}", master=br) for i in range(2)), tap("vs-foreign", master=br)]
    snap = replace(snapshot(vifs=vifs, links=links), facts=HostFacts(interface_extras=()))
    ctx = CheckContext(snap, bind(snap))
    (found,) = port_not_isolated(ctx, CHECKS_BY_ID["sec.port_not_isolated"])
    assert (found.subject, found.domain) == (br, None)
    assert found.evidence_dict()["not_isolated"] == 3  # the foreign tap is open too
    assert found.fix is not None
    (argv,) = found.fix.argvs
    assert argv[:2] == ("sh", "-c") and argv[3:] == ("sh", br)  # the name is $1, never part of the script
    assert br not in argv[2]
    subprocess.run(["sh", "-n", "-c", found.fix.text()], check=True)  # valid shell (the e2e test runs it)


def test_nat_rules_missing_skips_an_address_that_is_no_prefix() -> None:
    """A source that let a malformed ``<ip address>`` through (the fuzzer's `` 5 ``) must not
    crash doctor; the well-formed subnet of the same network is still judged."""
    from vifscope.checks import CHECKS_BY_ID
    from vifscope.checks.networks import nat_rules_missing
    from vifscope.model import Firewall, LibvirtNetwork

    net = LibvirtNetwork("vs-n", "u", True, True, "nat", "vs-nbr", addresses=(" 5 /24", "10.9.0.1/24"))
    snap = replace(snapshot(networks=[net]), facts=HostFacts(firewall=Firewall()))
    found = list(nat_rules_missing(CheckContext(snap, ()), CHECKS_BY_ID["network.nat_rules_missing"]))
    assert [f.evidence_dict()["subnet"] for f in found] == ["10.9.0.0/24"]
