"""``fleet sync`` on the embedded store (SQLite): agents' answers made by the agent's own
report functions (tests/unit/fleetdocs.py), written and read back with SQL."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from tests.unit.fleetdocs import answer, down, guest
from vifscope.cli.fleet_sync import write
from vifscope.cli.main import main
from vifscope.fleet.history import host_states, sync_input
from vifscope.fleet.model import HostAnswer
from vifscope.model.fleetvif import HostSync, diff
from vifscope.store.engine import open_store
from vifscope.store.tables import fleet_addresses, fleet_hosts, fleet_vifs

WEB, DB = "52:54:00:00:00:01", "52:54:00:00:00:02"
# One declared vif per guest for the whole module: the same domain UUID in every answer.
web, db = guest("web", WEB), guest("db", DB, target="vnet1")

# The README's "when did this vif last bind?" query, verbatim.
LAST_BOUND = text("SELECT max(valid_from) FROM fleet_vifs WHERE host = :host AND domain = :domain AND status = 'bound'")


def sync_host(engine: Engine, answer: HostAnswer, now: float) -> HostSync:
    return write(engine, sync_input(answer), now)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_store(f"sqlite:///{tmp_path / 'fleet.db'}")


def rows(engine: Engine) -> list[tuple[object, ...]]:
    cols = (fleet_vifs.c.domain, fleet_vifs.c.status, fleet_vifs.c.valid_from, fleet_vifs.c.valid_to)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*cols).order_by(fleet_vifs.c.domain, fleet_vifs.c.valid_from))]


def test_states_and_diff_keep_an_unchanged_vif_open() -> None:
    a = answer("h1", [web, db])
    states = host_states(a)
    assert [(s.domain, s.index, s.mac, s.status, s.type) for s in states] == [
        ("db", 0, DB, "bound", "bridge"),
        ("web", 0, WEB, "bound", "bridge"),
    ]
    open_rows = {s.key: (n, s) for n, s in enumerate(states)}
    assert diff(open_rows, states).unchanged == 2
    change = diff(open_rows, states[:1])  # web is gone
    assert change.close == (1,) and change.open == ()


def test_first_sync_opens_an_interval_per_vif_and_a_repeat_writes_nothing(engine: Engine) -> None:
    a = answer("h1", [web, db], findings=[{"check": "x", "severity": "warning"}])
    first = sync_host(engine, a, now=100.0)
    assert (first.error, first.vifs, first.opened, first.closed) == (None, 2, 2, 0)
    again = sync_host(engine, a, now=200.0)
    assert (again.opened, again.closed) == (0, 0)
    assert rows(engine) == [("db", "bound", 100.0, None), ("web", "bound", 100.0, None)]
    with engine.connect() as conn:
        host = conn.execute(select(fleet_hosts)).one()._mapping
    assert host["synced_at"] == 200.0 and host["vifs"] == 2 and host["findings_warning"] == 1
    assert host["host_id"] == "id-h1" and host["error"] is None


def test_a_verdict_change_closes_the_interval_and_last_bound_is_one_query(engine: Engine) -> None:
    sync_host(engine, answer("h1", [web]), now=100.0)
    cut = sync_host(engine, answer("h1", [web], plugged=False), now=200.0)
    assert (cut.opened, cut.closed) == (1, 1)
    sync_host(engine, answer("h1", [web]), now=300.0)
    sync_host(engine, answer("h1", [web], plugged=False), now=400.0)
    assert [(s, f, t) for _, s, f, t in rows(engine)] == [
        ("bound", 100.0, 200.0),
        ("detached", 200.0, 300.0),
        ("bound", 300.0, 400.0),
        ("detached", 400.0, None),
    ]
    with engine.connect() as conn:
        assert conn.execute(LAST_BOUND, {"host": "h1", "domain": "web"}).scalar() == 300.0
        problems = conn.execute(select(fleet_vifs.c.problems).where(fleet_vifs.c.valid_to.is_(None))).scalar()
    assert problems  # the detached verdict's problem codes are kept with the interval


def test_a_vif_gone_from_the_agent_is_closed_and_a_host_down_keeps_its_rows(engine: Engine) -> None:
    sync_host(engine, answer("h1", [web, db]), now=100.0)
    sync_host(engine, answer("h1", [web]), now=200.0)
    failed = sync_host(engine, down("h1"), now=300.0)
    assert failed.error == "cannot connect: Connection refused"
    assert rows(engine) == [("db", "bound", 100.0, 200.0), ("web", "bound", 100.0, None)]
    with engine.connect() as conn:
        host = conn.execute(select(fleet_hosts)).one()._mapping
    assert (host["attempted_at"], host["synced_at"], host["error"]) == (300.0, 200.0, failed.error)


def test_addresses_keep_their_first_sighting(engine: Engine) -> None:
    sync_host(engine, answer("h1", [web], addresses={WEB: ["10.1.0.5"]}), now=100.0)
    sync_host(engine, answer("h1", [web], addresses={WEB: ["10.1.0.5", "10.1.0.6"]}), now=200.0)
    with engine.connect() as conn:
        got = conn.execute(
            select(
                fleet_addresses.c.address,
                fleet_addresses.c.mac,
                fleet_addresses.c.first_seen,
                fleet_addresses.c.last_seen,
            ).order_by(fleet_addresses.c.address)
        ).all()
    assert [tuple(r) for r in got] == [("10.1.0.5", WEB, 100.0, 200.0), ("10.1.0.6", WEB, 200.0, 200.0)]


def test_hosts_are_kept_apart(engine: Engine) -> None:
    sync_host(engine, answer("h1", [web]), now=100.0)
    sync_host(engine, answer("h2", [web], plugged=False), now=100.0)
    sync_host(engine, answer("h1", [web]), now=200.0)  # h1 unchanged: h2's row not closed
    with engine.connect() as conn:
        open_ = conn.execute(
            select(fleet_vifs.c.host, fleet_vifs.c.status).where(fleet_vifs.c.valid_to.is_(None)).order_by("host")
        ).all()
    assert [tuple(r) for r in open_] == [("h1", "bound"), ("h2", "detached")]


def test_the_command_records_a_host_that_refuses_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inv = tmp_path / "fleet.yaml"
    inv.write_text(f"hosts:\n  - {{name: a, url: 'http://127.0.0.1:{port}/'}}\n")
    url = f"sqlite:///{tmp_path / 'f.db'}"
    assert main(["fleet", "sync", "--json", "--inventory", str(inv), "--db", url, "--timeout", "2"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["hosts"] == [{"host": "a", "synced": False, "unchanged": False, "vifs": 0, "opened": 0, "closed": 0}]
    assert doc["host_errors"] == [{"host": "a", "error": "cannot connect: Connection refused"}]
    with open_store(url).connect() as conn:
        assert conn.execute(select(fleet_hosts.c.error, fleet_hosts.c.synced_at)).one() == (
            "cannot connect: Connection refused",
            None,
        )


def test_an_unusable_store_url_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "fleet.yaml"
    inv.write_text("hosts: [{name: a, url: 'http://127.0.0.1:1/'}]\n")
    assert main(["fleet", "sync", "--inventory", str(inv), "--db", "mysql://x/y"]) == 2
    assert "not a usable database URL" in capsys.readouterr().err
