"""The MAC store as ``attach`` and ``detach`` use it: which pool, take a MAC, give it back.

No store at all (the embedded SQLite file never created, none configured) is fine for an
explicit ``--mac`` outside any pool; ``--mac auto`` needs a pool.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vifscope.actions.vifapply import MacBook, ReleaseFailed
from vifscope.actions.vifplan import Refused
from vifscope.checks.macs import StoreView, in_use
from vifscope.cli.checkxml import configured_store_url
from vifscope.model import HostSnapshot
from vifscope.model.mac import MacPool, MacState, format_mac, parse_mac

if TYPE_CHECKING:
    from sqlalchemy import Engine

POOL_HINT = "create one with 'vifscope mac pool add NAME --prefix 52:54:00:3a', or pass --mac MAC"


@dataclass(frozen=True)
class Store:
    engine: Engine
    view: StoreView


def open_store_view(db: str | None, host: str) -> Store | None:
    """The store and what it holds now; None when there is none (StoreUnavailable when down)."""
    from vifscope.store.alloc import records
    from vifscope.store.engine import open_store, sqlite_missing
    from vifscope.store.pools import load_pools

    url = configured_store_url(db)
    if url is None or sqlite_missing(url):  # a refused attach must not leave an empty database behind
        return None
    engine = open_store(url)
    with engine.connect() as conn:
        pools = load_pools(conn)
    return Store(engine, StoreView(records(engine), pools, host, time.time()))


def choose_pool(store: Store | None, name: str | None) -> MacPool:
    """``--pool NAME``, or the only pool there is. Refused otherwise."""
    pools = store.view.pools if store else ()
    if name is not None:
        found = next((p for p in pools if p.name == name), None)
        if found is None:
            known = ", ".join(p.name for p in pools) or "none"
            raise Refused(f"no MAC pool named {name!r} (pools: {known})", "see 'vifscope mac pool list'")
        return found
    if not pools:
        raise Refused("--mac auto needs a MAC pool, and there is none", POOL_HINT)
    if len(pools) > 1:
        raise Refused(f"{len(pools)} MAC pools: say which with --pool NAME", ", ".join(p.name for p in pools))
    return pools[0]


def _release_fn(store: Store) -> Callable[[str], None]:
    from sqlalchemy.exc import SQLAlchemyError

    from vifscope.store.alloc import release
    from vifscope.store.engine import StoreError
    from vifscope.store.url import load_store_config

    def give_back(mac: str) -> None:
        try:
            q = load_store_config().quarantine_s
            release(store.engine, parse_mac(mac), now=time.time(), default_quarantine_s=q, host=socket.gethostname())
        except (StoreError, SQLAlchemyError) as exc:
            raise ReleaseFailed(f"cannot release {mac} to the store: {exc}") from exc

    return give_back


def _store_errors(take: Callable[[], tuple[str, str | None, bool]]) -> Callable[[], tuple[str, str | None, bool]]:
    """The database going away mid-transaction is the store being unavailable (exit 3): nothing
    was committed, nothing was plugged yet."""
    from sqlalchemy.exc import OperationalError

    from vifscope.store.engine import StoreUnavailable

    def guarded() -> tuple[str, str | None, bool]:
        try:
            return take()
        except OperationalError as exc:
            msg = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreUnavailable(f"store error: {msg}", "is the database reachable? (--db URL)") from exc

    return guarded


def auto_book(store: Store, pool: MacPool, snap: HostSnapshot, domain: str) -> MacBook:
    """A MAC from ``pool``, after recording the MACs this host already uses inside its range
    (as ``mac import`` does), so the pool cannot hand one of them out."""
    from vifscope.store.alloc import allocate, import_macs

    def take() -> tuple[str, str | None, bool]:
        used = [(m, vifs[0].domain) for m, vifs in in_use(snap.vifs).items() if m in pool.range]
        used += [(parse_mac(x.mac), x.name) for x in snap.links if x.mac and _in(x.mac, pool)]
        now = time.time()
        if used:
            import_macs(store.engine, used, host=snap.host, now=now)
        got = allocate(store.engine, pool.name, 1, now=now, rng=random.Random(), domain=domain, host=snap.host)
        return format_mac(got[0]), pool.name, True

    return MacBook(_store_errors(take), _release_fn(store))


def _in(mac: str, pool: MacPool) -> bool:
    try:
        return parse_mac(mac) in pool.range
    except ValueError:
        return False


def explicit_book(store: Store | None, mac: str, domain: str, host: str) -> MacBook:
    """``--mac MAC``: recorded in its pool (if one holds it); released on failure only if this took it."""

    def take() -> tuple[str, str | None, bool]:
        if store is None:
            return mac, None, False
        from vifscope.store.claim import claim

        got = claim(store.engine, parse_mac(mac), domain=domain, host=host, now=time.time())
        return mac, got.pool, got.taken

    def no_store(_mac: str) -> None:
        raise ReleaseFailed("no store")

    return MacBook(_store_errors(take), _release_fn(store) if store else no_store)


def detach_release(store: Store | None) -> Callable[[str], bool]:
    """Give a detached MAC back if the store holds it as allocated or in use; False if it does not."""
    if store is None:
        return lambda _mac: False
    give_back = _release_fn(store)

    def release_if_held(mac: str) -> bool:
        rec = next((r for r in store.view.records if r.text == mac), None)
        if rec is None or rec.state is MacState.QUARANTINED:
            return False
        give_back(mac)
        return True

    return release_if_held
