"""store/: pools, allocation, release + quarantine, import, on a real SQLite file (no mocks).
The concurrent and PostgreSQL runs are tests/integration/test_mac_alloc.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, inspect, select

from vifscope.model.mac import MacPool, MacRange, MacState, parse_range
from vifscope.store import alloc, pools
from vifscope.store.alloc import Strategy
from vifscope.store.engine import HEAD, MIGRATIONS, PoolExhausted, StoreRefused, StoreUnavailable, open_store
from vifscope.store.tables import mac_addresses, mac_events, metadata
from vifscope.store.url import StoreConfig, StoreConfigError, parse_store_config, resolve_url

BASE = 0x525400000000


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_store(f"sqlite:///{tmp_path / 'deep' / 'er' / 'v.db'}")  # makes the directories


def small(engine: Engine, size: int = 8, quarantine_s: int = 60, name: str = "p") -> MacPool:
    pool = MacPool(name, MacRange(BASE, BASE + size - 1), quarantine_s)
    pools.add_pool(engine, pool, now=0)
    return pool


def test_migrations_head_and_schema_match_the_tables(engine: Engine) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD
    insp = inspect(engine)
    for table in metadata.sorted_tables:
        assert {c["name"] for c in insp.get_columns(table.name)} == {c.name for c in table.columns}
        assert {i["name"] for i in insp.get_indexes(table.name)} >= {i.name for i in table.indexes}
    assert insp.get_pk_constraint("mac_addresses")["constrained_columns"] == ["mac"]


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    pools.add_pool(open_store(url), MacPool("p", MacRange(BASE, BASE + 9)), now=0)
    assert [u.pool.name for u in pools.pool_usages(open_store(url), now=0)] == ["p"]


def test_allocation_fills_the_pool_then_exhaustion_takes_nothing(engine: Engine) -> None:
    small(engine, 8)
    rng = random.Random(7)
    got = alloc.allocate(engine, "p", 6, now=1, rng=rng, domain="vm1", host="h")
    assert len(set(got)) == 6 and all(BASE <= m < BASE + 8 for m in got)
    with pytest.raises(PoolExhausted) as exc:
        alloc.allocate(engine, "p", 3, now=1, rng=rng)
    assert exc.value.exit_code == 4 and "nothing was allocated" in str(exc.value)
    assert len(alloc.records(engine)) == 6  # all or none: the two free ones were not kept
    rest = alloc.allocate(engine, "p", 2, now=1, rng=rng)
    assert set(rest) | set(got) == set(range(BASE, BASE + 8))
    with engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(mac_events).where(mac_events.c.action == "allocate")).scalar()
            == 8
        )


@pytest.mark.parametrize("strategy", list(Strategy))
def test_both_strategies_hand_out_every_mac_once(engine: Engine, strategy: Strategy) -> None:
    small(engine, 32)
    rng = random.Random(3)
    got = [m for _ in range(32) for m in alloc.allocate(engine, "p", now=1, rng=rng, strategy=strategy)]
    assert sorted(got) == list(range(BASE, BASE + 32))
    with pytest.raises(PoolExhausted):
        alloc.allocate(engine, "p", now=1, rng=rng, strategy=strategy)


def test_next_free_finds_gaps_and_the_end(engine: Engine) -> None:
    small(engine, 10)
    alloc.import_macs(engine, [(BASE + i, "d") for i in (0, 1, 2, 5, 9)], host="h", now=0)
    with engine.connect() as conn:
        assert alloc.next_free(conn, BASE, BASE + 9) == BASE + 3
        assert alloc.next_free(conn, BASE + 4, BASE + 9) == BASE + 4
        assert alloc.next_free(conn, BASE + 5, BASE + 9) == BASE + 6
        assert alloc.next_free(conn, BASE + 9, BASE + 9) is None
        assert alloc.next_free(conn, BASE + 5, BASE + 4) is None


def test_release_quarantines_until_the_pools_time(engine: Engine) -> None:
    small(engine, 1, quarantine_s=100)
    (mac,) = alloc.allocate(engine, "p", now=0, rng=random.Random())
    rec = alloc.release(engine, mac, now=10, default_quarantine_s=5)
    assert rec.state is MacState.QUARANTINED and rec.reusable_at == 110  # the pool's 100 s, not the default
    assert alloc.release(engine, mac, now=50, default_quarantine_s=5).reusable_at == 110  # again: unchanged
    assert pools.pool_usages(engine, now=20)[0].quarantined == 1
    with pytest.raises(PoolExhausted):
        alloc.allocate(engine, "p", now=109.9, rng=random.Random())
    assert alloc.allocate(engine, "p", now=110, rng=random.Random()) == (mac,)
    with engine.connect() as conn:
        actions = conn.execute(select(mac_events.c.action).order_by(mac_events.c.id)).scalars().all()
    assert actions == ["allocate", "release", "expire", "allocate"]


def test_release_of_an_unknown_mac_is_refused(engine: Engine) -> None:
    with pytest.raises(StoreRefused):
        alloc.release(engine, BASE, now=0, default_quarantine_s=5)


def test_import_blocks_allocation_and_revives_released_macs(engine: Engine) -> None:
    pool = small(engine, 4)
    outside = 0x0A0000000001
    res = alloc.import_macs(engine, [(BASE, "a"), (BASE + 1, "b"), (BASE, "dup"), (outside, "c")], host="h", now=0)
    assert res.added == (outside, BASE, BASE + 1) and res.known == 0  # sorted
    got = alloc.allocate(engine, "p", 2, now=1, rng=random.Random(1))
    assert set(got) == {BASE + 2, BASE + 3}
    alloc.release(engine, BASE + 2, now=2, default_quarantine_s=5)
    again = alloc.import_macs(engine, [(BASE + 2, "e"), (BASE, "a")], host="h", now=3)
    assert again.revived == (BASE + 2,) and again.added == () and again.known == 1
    by_mac = {r.mac: r for r in alloc.records(engine)}
    assert by_mac[outside].state is MacState.IMPORTED and by_mac[outside].pool is None
    assert by_mac[BASE].pool == pool.name and by_mac[BASE + 2].state is MacState.IMPORTED


def test_pools_may_not_overlap_or_share_a_name(engine: Engine) -> None:
    pools.add_pool(engine, MacPool("a", parse_range("52:54:00:10:00:00-52:54:00:1f:ff:ff")), now=0)
    with pytest.raises(StoreRefused, match="overlaps pool a"):
        pools.add_pool(engine, MacPool("b", parse_range("52:54:00:1f:ff:ff-52:54:00:20:00:00")), now=0)
    with pytest.raises(StoreRefused, match="exists"):
        pools.add_pool(engine, MacPool("a", parse_range("52:54:00:30:00:00-52:54:00:30:00:ff")), now=0)
    pools.add_pool(engine, MacPool("b", parse_range("52:54:00:20:00:00-52:54:00:20:00:ff")), now=0)
    assert [u.pool.name for u in pools.pool_usages(engine, now=0)] == ["a", "b"]


def test_remove_refuses_with_allocations_unless_forced_and_keeps_the_records(engine: Engine) -> None:
    small(engine, 4)
    (mac,) = alloc.allocate(engine, "p", now=0, rng=random.Random())
    with pytest.raises(StoreRefused, match="1 allocated"):
        pools.remove_pool(engine, "p", force=False)
    assert pools.remove_pool(engine, "p", force=True) == 1
    assert [(r.mac, r.pool) for r in alloc.records(engine)] == [(mac, None)]
    with pytest.raises(StoreRefused, match="no MAC pool"):
        alloc.allocate(engine, "p", now=0, rng=random.Random())
    small(engine, 4)  # the same range again: the kept record still blocks its MAC
    got = alloc.allocate(engine, "p", 3, now=0, rng=random.Random())
    assert mac not in got
    with pytest.raises(PoolExhausted):
        alloc.allocate(engine, "p", now=0, rng=random.Random())


def test_url_resolution_order_and_config() -> None:
    cfg = parse_store_config('[store]\nurl = "postgresql+psycopg://h/db"\n[mac]\nquarantine_s = 60\n[doctor]\nx = 1\n')
    assert cfg == StoreConfig("postgresql+psycopg://h/db", 60)
    assert resolve_url("sqlite:///a", {"VIFSCOPE_DB": "sqlite:///b"}, cfg) == "sqlite:///a"
    assert resolve_url(None, {"VIFSCOPE_DB": "sqlite:///b"}, cfg) == "sqlite:///b"
    assert resolve_url(None, {}, cfg) == "postgresql+psycopg://h/db"
    assert resolve_url(None, {}, StoreConfig()) == "sqlite:////var/lib/vifscope/vifscope.db"
    for bad in ("[store]\nurl = 3\n", "[mac]\nquarantine_s = -1\n", "[store]\nuri = 'x'\n", "[store\n"):
        with pytest.raises(StoreConfigError):
            parse_store_config(bad)


def test_unreachable_and_unusable_stores(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as down:
        open_store(f"postgresql+psycopg://nobody@/vifscope?host={tmp_path}")  # no server on that socket dir
    assert down.value.exit_code == 3 and down.value.hint
    with pytest.raises(StoreRefused):
        open_store("mysql://x/y")
    (tmp_path / "plain").write_text("a file, not a directory")
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite:///{tmp_path / 'plain' / 'sub' / 'v.db'}")


def test_the_primary_key_is_what_refuses_a_second_row(engine: Engine) -> None:
    """The guarantee itself: a plain INSERT of a taken MAC fails in the database."""
    from sqlalchemy.exc import IntegrityError

    small(engine, 2)
    (mac,) = alloc.allocate(engine, "p", now=0, rng=random.Random())
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(mac_addresses.insert().values(mac=mac, state="allocated", changed_at=0))


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 10_000
