"""``mac: auto`` in an apply file: which MAC each such NIC gets. Pure.

The rule (idempotent by construction): a ``mac: auto`` NIC on network/bridge/OVS ``S`` with
pool ``P`` is the guest's NIC that is already on ``S`` with a MAC inside ``P``'s range (the
live NICs of a running guest, the persistent ones otherwise), not named by another entry of
the file; several auto entries for the same ``S`` and ``P`` take such NICs in MAC order. Only
when none is left is a new MAC taken from the pool (``take``), so a second apply of the same
file reuses what the first plugged and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from vifscope.model.desired import Desired, DomainSpec, GuestState, HostState, VifSpec
from vifscope.model.mac import MacPool, parse_mac

AUTO = "auto"
# (pool, domain) → a MAC newly taken from the pool; the caller records it for release on failure
Take = Callable[[MacPool, str], str]


class PoolRefused(ValueError):
    """An auto MAC with no pool to come from."""


def has_auto(desired: Desired) -> bool:
    return any(v.mac == AUTO for d in desired.domains for v in d.interfaces)


def pick_pool(pools: tuple[MacPool, ...], name: str | None, where: str) -> MacPool:
    if name is not None:
        found = next((p for p in pools if p.name == name), None)
        if found is None:
            known = ", ".join(p.name for p in pools) or "none"
            raise PoolRefused(f"{where}: no MAC pool named {name!r} (pools: {known})")
        return found
    if len(pools) != 1:
        raise PoolRefused(f"{where}: mac: auto needs pool: (there are {len(pools)} MAC pools)")
    return pools[0]


def _in(mac: str, pool: MacPool) -> bool:
    try:
        return parse_mac(mac) in pool.range
    except ValueError:
        return False


def _resolve_domain(spec: DomainSpec, guest: GuestState | None, pools: tuple[MacPool, ...], take: Take) -> DomainSpec:
    named = {v.mac for v in spec.interfaces if v.mac != AUTO}
    nics = () if guest is None else (guest.live if guest.running else guest.config)
    out: list[VifSpec] = []
    for i, vif in enumerate(spec.interfaces):
        if vif.mac != AUTO:
            out.append(vif)
            continue
        pool = pick_pool(pools, vif.pool, f"domains.{spec.name}.interfaces[{i}]")
        found = sorted(
            n.mac
            for n in nics
            if n.kind is vif.kind and n.source == vif.source and _in(n.mac, pool) and n.mac not in named
        )
        mac = found[0] if found else take(pool, spec.name)
        named.add(mac)
        out.append(replace(vif, mac=mac, pool=pool.name))
    return replace(spec, interfaces=tuple(out))


def resolve_auto(desired: Desired, state: HostState, pools: tuple[MacPool, ...], take: Take) -> Desired:
    """``desired`` with every ``mac: auto`` replaced by a MAC (see the module docstring)."""
    domains = tuple(_resolve_domain(d, state.guest(d.name), pools, take) for d in desired.domains)
    return replace(desired, domains=domains)
