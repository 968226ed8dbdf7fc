"""``vifscope fleet sync`` against real agents (``vifscope serve`` on libvirt test-driver node
files) into both stores: the embedded SQLite file and a private PostgreSQL 15 server (the one
tests/integration/test_mac_alloc.py starts: initdb in a temporary directory, a unix socket
only, stopped and removed afterwards).

Two hubs syncing the same fleet at once, into a store with no rows (both open every interval
at the same moment): nothing lost, nothing doubled, one open interval per vif."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tests.integration.fleet_agents import Agent, Guest, agents, closed_port_url
from tests.integration.pgserver import empty_store, private_postgres
from vifscope.store.engine import open_store
from vifscope.store.tables import fleet_addresses, fleet_hosts, fleet_vifs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HOSTS: dict[str, list[Guest]] = {
    "s1": [
        Guest("vs-s-web1", ("52:54:00:5a:00:01", "52:54:00:5a:00:02")),
        Guest("vs-s-off1", ("52:54:00:5a:00:03",), False),
    ],
    "s2": [Guest("vs-s-web2", ("52:54:00:5a:00:04",)), Guest("vs-s-db2", ("52:54:00:5a:00:05",))],
    "s3": [Guest(f"vs-s-many{i}", (f"52:54:00:5a:01:{i:02x}",)) for i in range(20)],
}
EXPECTED = {(h, g.name, mac) for h, gs in HOSTS.items() for g in gs for mac in g.macs}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("fleetsync")
    with agents(work, HOSTS) as running:
        _wait_ready(running)
        entries = [{"name": n, "url": a.url} for n, a in running.items()]
        entries.append({"name": "s-down", "url": closed_port_url()})
        inv = work / "inventory.yaml"
        inv.write_text(json.dumps({"hosts": entries}))
        yield inv


def _wait_ready(running: dict[str, Agent]) -> None:
    import urllib.request

    for a in running.values():
        with urllib.request.urlopen(a.url + "api/v1/vifs", timeout=60) as resp:
            assert resp.status == 200


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    try:
        with private_postgres("vs-s-pg-") as url:
            yield url.replace("postgresql+psycopg://", "postgresql://")  # the plain form users type
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store whose fleet tables have no rows."""
    return empty_store(request, tmp_path, ("fleet_addresses", "fleet_vifs", "fleet_hosts"))


def hub_cmd(inv: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "vifscope", "fleet", "sync", "--json", "--inventory", str(inv), "--db", url]


def open_rows(url: str) -> list[tuple[Any, ...]]:
    engine = open_store(url)
    cols = (fleet_vifs.c.host, fleet_vifs.c.domain, fleet_vifs.c.mac)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(*cols).where(fleet_vifs.c.valid_to.is_(None)))]
    engine.dispose()
    return rows


def count(url: str, table: Any) -> int:
    engine = open_store(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return int(n)


def test_sync_writes_every_vif_once_and_a_repeat_opens_nothing(fleet: Path, url: str) -> None:
    first = subprocess.run([*hub_cmd(fleet, url), "--timeout", "5"], capture_output=True, text=True, timeout=120)
    assert first.returncode == 1, first.stderr  # s-down did not answer
    doc = json.loads(first.stdout)
    assert doc["host_errors"] == [{"host": "s-down", "error": "cannot connect: Connection refused"}]
    assert {h["host"]: h["opened"] for h in doc["hosts"]} == {"s1": 3, "s2": 2, "s3": 20, "s-down": 0}
    again = json.loads(subprocess.run(hub_cmd(fleet, url), capture_output=True, text=True, timeout=120).stdout)
    assert sum(h["opened"] + h["closed"] for h in again["hosts"]) == 0
    rows = open_rows(url)
    assert sorted(rows) == sorted(EXPECTED)
    assert count(url, fleet_vifs) == len(EXPECTED)
    engine = open_store(url)
    with engine.connect() as conn:
        hosts = {r.name: r for r in conn.execute(select(fleet_hosts))}
        off = conn.execute(select(fleet_vifs.c.status).where(fleet_vifs.c.domain == "vs-s-off1")).scalar()
    engine.dispose()
    assert hosts["s1"].host_id == "id-s1" and hosts["s3"].vifs == 20 and hosts["s1"].synced_at is not None
    assert hosts["s-down"].synced_at is None and "refused" in hosts["s-down"].error
    assert off == "inactive"


def test_the_readmes_history_queries_run_on_both_stores(fleet: Path, url: str) -> None:
    subprocess.run(hub_cmd(fleet, url), capture_output=True, text=True, timeout=120, check=False)
    engine = open_store(url)
    epoch = "extract(epoch FROM now())" if engine.dialect.name == "postgresql" else "unixepoch()"
    with engine.connect() as conn:
        last = conn.execute(
            text(
                "SELECT max(valid_from) FROM fleet_vifs WHERE host = 's1' AND domain = 'vs-s-web1' AND status = 'bound'"
            )
        ).scalar()
        until = conn.execute(
            text(f"SELECT max(coalesce(valid_to, {epoch})) FROM fleet_vifs WHERE mac = '52:54:00:5a:00:04'")
        ).scalar()
        faulty = conn.execute(
            text("SELECT host, domain, status, problems FROM fleet_vifs WHERE valid_to IS NULL AND status <> 'bound'")
        ).all()
    engine.dispose()
    assert last is None  # the test driver's guests are on a bridge no host has: never bound
    assert until is not None and abs(float(until) - time.time()) < 3600
    assert {(r[0], r[1], r[2]) for r in faulty} >= {("s2", "vs-s-web2", "missing"), ("s1", "vs-s-off1", "inactive")}


def test_two_hubs_syncing_at_once_lose_nothing(fleet: Path, url: str) -> None:
    for _ in range(3):  # each round from empty tables: both hubs open every interval together
        engine = open_store(url)
        with engine.begin() as conn:
            for table in (fleet_addresses, fleet_vifs, fleet_hosts):
                conn.execute(table.delete())
        engine.dispose()
        hubs = [
            subprocess.Popen(hub_cmd(fleet, url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outs = [h.communicate(timeout=120) for h in hubs]
        assert [h.returncode for h in hubs] == [1, 1], [err for _, err in outs]  # only s-down failed
        docs = [json.loads(out) for out, _ in outs]
        assert all(
            d["host_errors"] == [{"host": "s-down", "error": "cannot connect: Connection refused"}] for d in docs
        )
        rows = open_rows(url)
        assert sorted(rows) == sorted(EXPECTED)  # every vif, each with exactly one open interval
        assert count(url, fleet_vifs) == len(EXPECTED)  # and no interval closed and reopened
        assert count(url, fleet_hosts) == len(HOSTS) + 1


def test_daemon_syncs_until_sigterm(fleet: Path, url: str) -> None:
    proc = subprocess.Popen(
        [*hub_cmd(fleet, url), "--daemon", "--interval", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and count(url, fleet_hosts) < len(HOSTS) + 1:
            time.sleep(0.2)
        time.sleep(1.5)  # a few more rounds
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.count('"host_errors"') >= 2  # one document per round
    assert sorted(open_rows(url)) == sorted(EXPECTED)
