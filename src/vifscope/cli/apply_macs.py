"""``mac: auto`` NICs of an apply file, resolved against the MAC store (``cli/vifstore.py``):
a NIC the guest already has on that network with a MAC from the pool is reused, else a MAC is
allocated (recorded for the guest) and given back if the apply does not end verified.
``--plan`` allocates nothing: a NIC still to be plugged shows as MAC ``auto``.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vifscope.actions.declare.macauto import AUTO, has_auto, resolve_auto
from vifscope.actions.declare.vifs import read_host
from vifscope.cli.vifstore import Store, detach_release, open_store_view
from vifscope.model.desired import Desired, HostState
from vifscope.model.mac import MacPool, format_mac, parse_mac


@dataclass
class AutoMacs:
    """The file with its auto MACs resolved, and the MACs this run took from the store."""

    desired: Desired
    taken: list[str] = field(default_factory=list)
    give_back: Callable[[str], bool] = lambda _mac: False

    def release(self) -> None:
        """After a refused or rolled-back apply: the new NICs are gone, so are their MACs."""
        for mac in self.taken:
            self.give_back(mac)


def _store() -> Store | None:
    return open_store_view(None, socket.gethostname())


def _used_in(state: HostState, pool: MacPool) -> list[tuple[int, str]]:
    macs = [(v.mac, g.name) for g in state.guests for v in (*g.live, *g.config)]
    return [(parse_mac(m), dom) for m, dom in macs if _valid(m) and parse_mac(m) in pool.range]


def _valid(mac: str) -> bool:
    try:
        parse_mac(mac)
    except ValueError:
        return False
    return True


def for_plan(desired: Desired, uri: str) -> Desired:
    if not has_auto(desired):
        return desired
    store = _store()
    state = read_host(uri, desired.domain_names)
    return resolve_auto(desired, state, store.view.pools if store else (), lambda _pool, _dom: AUTO)


def for_apply(desired: Desired, uri: str) -> AutoMacs:
    if not has_auto(desired):
        return AutoMacs(desired)
    from vifscope.store.alloc import allocate, import_macs

    store = _store()
    state = read_host(uri, desired.domain_names)
    out = AutoMacs(desired, give_back=detach_release(store))

    def take(pool: MacPool, domain: str) -> str:
        assert store is not None  # pick_pool refused already when there is no pool at all
        now, host = time.time(), socket.gethostname()
        used = _used_in(state, pool)
        if used:  # MACs guests already have inside the range: the pool must not hand them out
            import_macs(store.engine, used, host=host, now=now)
        got = allocate(store.engine, pool.name, 1, now=now, rng=random.Random(), domain=domain, host=host)
        out.taken.append(format_mac(got[0]))
        return out.taken[-1]

    out.desired = resolve_auto(desired, state, store.view.pools if store else (), take)
    return out
