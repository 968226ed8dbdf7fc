"""The fleet's inventory in the store and the agents' ETags reused, against real agents
(``vifscope serve`` on test-driver node files, each logging its requests) and both stores:
a new SQLite file and a private PostgreSQL 15 server.

- ``fleet hosts add|remove|list --db URL`` and ``fleet status|doctor --db URL``: the hosts
  come from the table; a bad entry, a taken name, neither or both inventories: exit 2.
- ``fleet sync --daemon`` on the store's hosts: after the first round every host answers
  304 to every question (the agents' own logs say so) and no vif or address row is written;
  a host whose node file changes is fetched and its history written; a host added to the
  table while the daemon runs is synced from the next round.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import func, select

from tests.integration.fleet_agents import TEST_NS, Agent, agent
from tests.integration.pgserver import empty_store, private_postgres
from vifscope.store.engine import open_store
from vifscope.store.tables import fleet_addresses, fleet_hosts, fleet_inventory, fleet_vifs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TABLES = ("fleet_addresses", "fleet_vifs", "fleet_hosts", "fleet_inventory")
REQUEST = re.compile(r'"GET /(api/v1/[a-z]+) HTTP/1\.1" (\d{3})')


@dataclass(frozen=True)
class Dom:
    name: str
    uuid: str
    macs: tuple[str, ...]


def node(doms: list[Dom]) -> str:
    """A node file with fixed UUIDs: rewriting it with one guest more changes only that guest."""
    out = []
    for d in doms:
        nics = "".join(
            f"<interface type='bridge'><mac address='{m}'/><source bridge='vs-f4-nobr'/></interface>" for m in d.macs
        )
        out.append(
            f"<domain type='test' xmlns:test='{TEST_NS}'><name>{d.name}</name><uuid>{d.uuid}</uuid>"
            f"<memory>65536</memory><os><type>hvm</type></os><devices>{nics}</devices></domain>"
        )
    return "<node>" + "".join(out) + "</node>"


def dom(name: str, *macs: str) -> Dom:
    return Dom(name, str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), macs)


A1 = [dom("vs-f4-web1", "52:54:00:f4:00:01", "52:54:00:f4:00:02")]
A2 = [dom("vs-f4-web2", "52:54:00:f4:00:03"), dom("vs-f4-db2", "52:54:00:f4:00:04")]
A3 = [dom("vs-f4-late", "52:54:00:f4:00:05")]


@dataclass
class Fleet:
    work: Path
    agents: dict[str, Agent]

    def log(self, name: str) -> Path:
        return self.work / f"{name}.log"

    def requests(self, name: str) -> list[tuple[str, int]]:
        return [(p, int(code)) for p, code in REQUEST.findall(self.log(name).read_text())]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("vs-f4-inv")
    with ExitStack() as stack:
        running = {
            name: stack.enter_context(agent(work, name, [], "--access-log", log=work / f"{name}.log", node=node(doms)))
            for name, doms in (("a1", A1), ("a2", A2), ("a3", A3))
        }
        yield Fleet(work, running)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    try:
        with private_postgres("vs-f4-pg-") as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_store(request, tmp_path, TABLES)


def vs(*args: str) -> subprocess.CompletedProcess[str]:
    """The command's run, its stderr with the console's line wrapping undone (one space)."""
    done = subprocess.run([sys.executable, "-m", "vifscope", *args], capture_output=True, text=True, timeout=120)
    done.stderr = " ".join(done.stderr.split())
    return done


def count(url: str, table: Any) -> int:
    engine = open_store(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return int(n)


def test_hosts_add_list_remove_and_status_doctor_read_the_table(fleet: Fleet, url: str) -> None:
    a1, a2 = fleet.agents["a1"].url, fleet.agents["a2"].url
    assert vs("fleet", "hosts", "add", "a1", a1, "--label", "segment=s1", "--db", url).returncode == 0
    assert vs("fleet", "hosts", "add", "a2", "http://127.0.0.1:1/", "--db", url).returncode == 0
    taken = vs("fleet", "hosts", "add", "a2", a2, "--db", url)
    assert taken.returncode == 2 and "already in the inventory" in taken.stderr and "--replace" in taken.stderr
    assert vs("fleet", "hosts", "add", "a2", a2, "--replace", "--db", url).returncode == 0
    bad = vs("fleet", "hosts", "add", "a9", "ftp://x/", "--db", url)
    assert bad.returncode == 2 and "is not an http(s) URL" in bad.stderr
    listed = json.loads(vs("fleet", "hosts", "list", "--json", "--db", url).stdout)
    assert listed["hosts"] == [
        {"name": "a1", "url": a1, "labels": {"segment": "s1"}},
        {"name": "a2", "url": a2, "labels": {}},
    ]
    st = vs("fleet", "status", "--json", "--db", url)
    doc = json.loads(st.stdout)
    assert st.returncode == 1, st.stderr  # the test driver's bridges do not exist: vifs missing
    assert {h["name"]: (h["answered"], h["vifs"]) for h in doc["hosts"]} == {"a1": (True, 2), "a2": (True, 2)}
    assert {h["name"]: h["labels"] for h in doc["hosts"]}["a1"] == {"segment": "s1"}
    dr = json.loads(vs("fleet", "doctor", "--json", "--db", url).stdout)
    assert [h["name"] for h in dr["hosts"]] == ["a1", "a2"] and dr["host_errors"] == []
    assert vs("fleet", "hosts", "remove", "a2", "--db", url).returncode == 0
    gone = vs("fleet", "hosts", "remove", "a2", "--db", url)
    assert gone.returncode == 2 and "no host 'a2'" in gone.stderr
    doc = json.loads(vs("fleet", "status", "--json", "--db", url).stdout)
    assert [h["name"] for h in doc["hosts"]] == ["a1"]
    assert count(url, fleet_inventory) == 1


def test_exactly_one_inventory(fleet: Fleet, tmp_path: Path) -> None:
    inv = tmp_path / "fleet.yaml"
    inv.write_text(json.dumps({"hosts": [{"name": "a1", "url": fleet.agents["a1"].url}]}))
    db = f"sqlite:///{tmp_path / 'f.db'}"
    for cmd in ("status", "doctor"):
        both = vs("fleet", cmd, "--inventory", str(inv), "--db", db)
        assert both.returncode == 2 and "not allowed with argument" in both.stderr
        assert vs("fleet", cmd).returncode == 2
    empty = vs("fleet", "status", "--db", db)  # no such file: nothing is created for a read
    assert empty.returncode == 2 and "no such store" in empty.stderr and not (tmp_path / "f.db").exists()
    vs("fleet", "hosts", "list", "--db", db)  # creates the store, with no hosts
    none = vs("fleet", "status", "--db", db)
    assert none.returncode == 2 and "no hosts" in none.stderr and "fleet hosts add" in none.stderr
    assert vs("serve", "--fleet", str(inv), "--db", db).returncode == 2
    assert vs("serve", "--db", db).returncode == 2
    assert vs("serve", "--fleet").returncode == 2


def _rounds(out: IO[str], n: int, deadline: float) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    while len(docs) < n and time.monotonic() < deadline:
        line = out.readline()
        if not line:
            break
        docs.append(json.loads(line))
    assert len(docs) == n, docs
    return docs


def test_sync_daemon_sends_etags_and_writes_no_history_for_an_unchanged_host(fleet: Fleet, url: str) -> None:
    for name in ("a1", "a2"):
        assert vs("fleet", "hosts", "add", name, fleet.agents[name].url, "--db", url).returncode == 0
    (fleet.work / "a2.xml").write_text(node(A2))
    cmd = [sys.executable, "-m", "vifscope", "fleet", "sync", "--json", "--db", url, "--daemon", "--interval", "0.3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        first = _rounds(proc.stdout, 1, deadline)[0]
        assert {h["host"]: (h["opened"], h["unchanged"]) for h in first["hosts"]} == {
            "a1": (2, False),
            "a2": (2, False),
        }
        before = [len(fleet.requests(n)) for n in ("a1", "a2")]
        rows = (count(url, fleet_vifs), count(url, fleet_addresses))
        quiet = _rounds(proc.stdout, 4, deadline)
        assert all(
            h["unchanged"] and h["synced"] and h["opened"] == h["closed"] == 0 for d in quiet for h in d["hosts"]
        )
        assert (count(url, fleet_vifs), count(url, fleet_addresses)) == rows
        for name, seen in zip(("a1", "a2"), before, strict=True):
            later = fleet.requests(name)[seen:]
            assert later and {code for _, code in later} == {304}, later  # every question, every round: 304
            assert {p for p, _ in later} == {"api/v1/host", "api/v1/vifs", "api/v1/findings"}
        # a2 gains a guest: only a2 is fetched again, and its history gets the new interval
        (fleet.work / "a2.xml").write_text(node([*A2, dom("vs-f4-new2", "52:54:00:f4:00:09")]))
        # a host added to the table is synced from the next round on, no restart
        assert vs("fleet", "hosts", "add", "a3", fleet.agents["a3"].url, "--db", url).returncode == 0
        opened: dict[str, int] = {}
        while time.monotonic() < deadline and not (opened.get("a2") and opened.get("a3")):
            for h in _rounds(proc.stdout, 1, deadline)[0]["hosts"]:
                if not h["unchanged"]:
                    opened[h["host"]] = opened.get(h["host"], 0) + h["opened"] + h["closed"]
        assert opened == {"a2": 1, "a3": 1}, opened  # a1 stayed unchanged throughout
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    engine = open_store(url)
    with engine.connect() as conn:
        hosts = {r.name: r for r in conn.execute(select(fleet_hosts))}
        new = conn.execute(select(fleet_vifs.c.host).where(fleet_vifs.c.domain == "vs-f4-new2")).scalars().all()
    engine.dispose()
    assert new == ["a2"] and count(url, fleet_vifs) == 6
    assert hosts["a1"].synced_at > hosts["a1"].attempted_at - 1 and hosts["a1"].error is None
    assert time.time() - hosts["a1"].synced_at < 30  # the unchanged host's row was touched


def _fleet_doc(hub: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(hub + "api/v1/fleet", timeout=60) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


def test_the_hub_on_the_stores_hosts_asks_unchanged_hosts_with_their_etags(fleet: Fleet, tmp_path: Path) -> None:
    from tests.integration.fleet_agents import hub_server

    (fleet.work / "a2.xml").write_text(node(A2))
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    for name in ("a1", "a2"):
        assert vs("fleet", "hosts", "add", name, fleet.agents[name].url, "--db", db).returncode == 0
    with hub_server(tmp_path, None, "--db", db) as hub:
        first = _fleet_doc(hub)
        assert [h["name"] for h in first["hosts"]] == ["a1", "a2"] and first["host_errors"] == []
        time.sleep(1.0)  # past the agents' snapshot interval: they take new snapshots, same content
        seen = {n: len(fleet.requests(n)) for n in ("a1", "a2")}
        again = _fleet_doc(hub)
        assert again["vifs"] == first["vifs"] and again["findings"] == first["findings"]
        for name in ("a1", "a2"):
            later = fleet.requests(name)[seen[name] :]
            assert sorted(later) == [("api/v1/findings", 304), ("api/v1/host", 304), ("api/v1/vifs", 304)], later
        # a changed host is fetched again (and only it): its new guest is on the page
        (fleet.work / "a2.xml").write_text(node([*A2, dom("vs-f4-new2", "52:54:00:f4:00:09")]))
        seen = {n: len(fleet.requests(n)) for n in ("a1", "a2")}
        deadline = time.monotonic() + 60
        doc = again
        while time.monotonic() < deadline and "vs-f4-new2" not in {v["domain"] for v in doc["vifs"]}:
            time.sleep(0.5)
            doc = _fleet_doc(hub)
        assert {v["domain"] for v in doc["vifs"] if v["host"] == "a2"} == {"vs-f4-web2", "vs-f4-db2", "vs-f4-new2"}
        assert ("api/v1/vifs", 200) in fleet.requests("a2")[seen["a2"] :]
        assert {code for _, code in fleet.requests("a1")[seen["a1"] :]} == {304}
        # the table is read on every request: a host added now is on the next page
        assert vs("fleet", "hosts", "add", "a3", fleet.agents["a3"].url, "--db", db).returncode == 0
        assert vs("fleet", "hosts", "remove", "a1", "--db", db).returncode == 0
        assert [h["name"] for h in _fleet_doc(hub)["hosts"]] == ["a2", "a3"]
