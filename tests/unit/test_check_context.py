"""CheckContext's per-bridge answers that checks ask for every vif: the same result as
working each one out, whatever the port's place on the bridge."""

from __future__ import annotations

from dataclasses import replace

from tests.unit.ipjson import bridge, phys, snapshot, tap
from vifscope.checks.base import CheckContext
from vifscope.model import HostFacts, NwfilterDef

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
