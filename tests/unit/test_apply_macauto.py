"""The ``mac: auto`` rule: reuse the guest's NIC on the same source with a MAC in the pool
(not one the file names, not one on another network, not one outside the pool), in MAC
order; take from the pool only when none is left; a missing or ambiguous pool is refused."""

from __future__ import annotations

import pytest

from vifscope.actions.declare.macauto import PoolRefused, resolve_auto
from vifscope.model.desired import Desired, DomainSpec, GuestState, HostState, VifKind, VifSpec, VifState
from vifscope.model.mac import MacPool, MacRange, format_mac, parse_mac

POOL = MacPool("prod", MacRange(parse_mac("52:54:00:3a:00:00"), parse_mac("52:54:00:3a:ff:ff")))
OTHER = MacPool("lab", MacRange(parse_mac("52:54:00:3b:00:00"), parse_mac("52:54:00:3b:ff:ff")))
NET = VifKind.NETWORK


def auto(source: str = "a", pool: str | None = "prod") -> VifSpec:
    return VifSpec("auto", NET, source, pool=pool)


def state(*nics: VifState) -> HostState:
    return HostState("test:///", guests=(GuestState("web1", True, True, live=nics, config=()),))


def resolve(vifs: tuple[VifSpec, ...], host: HostState, pools: tuple[MacPool, ...] = (POOL, OTHER)) -> list[str]:
    taken: list[str] = []

    def take(pool: MacPool, domain: str) -> str:
        taken.append(format_mac(pool.range.start + len(taken) + 0x100))
        return taken[-1]

    got = resolve_auto(Desired(domains=(DomainSpec("web1", vifs),)), host, pools, take)
    return [v.mac for v in got.domains[0].interfaces]


def test_reuses_the_nic_on_the_same_network_with_a_pool_mac_and_takes_only_what_is_missing() -> None:
    host = state(
        VifState("52:54:00:3a:00:09", NET, "a"),
        VifState("52:54:00:3a:00:05", NET, "a"),
        VifState("52:54:00:3a:00:07", NET, "b"),  # another network
        VifState("52:54:00:3b:00:01", NET, "a"),  # another pool
        VifState("52:54:00:3a:00:02", NET, "a"),  # named by the file itself
    )
    explicit = VifSpec("52:54:00:3a:00:02", NET, "a")
    assert resolve((explicit, auto(), auto(), auto()), host) == [
        "52:54:00:3a:00:02",
        "52:54:00:3a:00:05",
        "52:54:00:3a:00:09",
        "52:54:00:3a:01:00",
    ]


def test_the_only_pool_is_used_when_none_is_named_and_ambiguity_is_refused() -> None:
    assert resolve((auto(pool=None),), state(), (POOL,)) == ["52:54:00:3a:01:00"]
    with pytest.raises(PoolRefused, match=r"interfaces\[0\]: mac: auto needs pool: \(there are 2"):
        resolve((auto(pool=None),), state())
    with pytest.raises(PoolRefused, match="no MAC pool named 'nope'"):
        resolve((auto(pool="nope"),), state())
