"""``vifscope attach`` / ``detach`` refusals through the real CLI against libvirt's test driver
(a node XML: no daemon), and the store's claim of a hand-picked MAC on a real SQLite file.

Every refusal exits 2 with one line and a hint (or the JSON of them), and leaves nothing
behind: no audit line, no store file, the domain's XML unchanged. The hot-plug itself, the
DHCP lease, ping, detach and rollback are tests/e2e/test_attach_e2e.py, on real guests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from vifscope.cli import main as cli
from vifscope.lab.private import PrivateOvsdb
from vifscope.model import DomainState
from vifscope.model.mac import MacPool, MacRange, MacState, parse_mac
from vifscope.sources.libvirt.devices import NoSuchDomain, read_domain
from vifscope.store import alloc, pools
from vifscope.store.claim import claim
from vifscope.store.engine import StoreRefused, open_store

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
BASE = 0x5254A1000000


def domain(name: str, *, acpi: bool = True, shutoff: bool = False, arch: str = "x86_64") -> str:
    uuid = f"6695eb01-f6a4-8304-79aa-{sum(map(ord, name)):012d}"  # fixed: the driver re-reads the file per connection
    features = "<features><acpi/></features>" if acpi else ""
    state = "<test:runstate>5</test:runstate>" if shutoff else ""
    return (
        f"<domain type='test'><name>{name}</name><uuid>{uuid}</uuid><memory>65536</memory><vcpu>1</vcpu>"
        f"<os><type arch='{arch}'>hvm</type></os>{features}<devices>"
        f"<interface type='network'><mac address='52:54:00:0c:00:01'/><source network='default'/></interface>"
        f"</devices>{state}</domain>"
    )


@pytest.fixture
def node(tmp_path: Path) -> str:
    doms = [domain("run1"), domain("off1", shutoff=True), domain("noacpi", acpi=False)]
    net = "<network><name>default</name><bridge name='virbr9'/></network>"
    path = tmp_path / "node.xml"
    path.write_text(f"<node xmlns:test='{TEST_NS}'>{''.join(doms)}{net}</node>")
    return f"test://{path}"


@pytest.fixture(scope="module")
def ovsdb() -> Iterator[PrivateOvsdb]:
    """An OVSDB of the test's own: whether a bridge exists must not hang on the host's OVS
    (with OVSDB unreadable, an unknown bridge may be an OVS netdev one: exit 3, not 2)."""
    with PrivateOvsdb() as db:
        db.start()
        yield db


@pytest.fixture
def run(
    tmp_path: Path, node: str, capsys: pytest.CaptureFixture[str], ovsdb: PrivateOvsdb, monkeypatch: pytest.MonkeyPatch
) -> Any:
    monkeypatch.setenv("OVS_RUNDIR", str(ovsdb.rundir))

    def go(*argv: str) -> tuple[int, dict[str, Any]]:
        extra = ["--json", "--db", f"sqlite:///{tmp_path / 'store.db'}", "--audit-log", str(tmp_path / "a.jsonl")]
        code = cli.main(["-c", node, *argv, *extra])
        out = capsys.readouterr().out
        return code, json.loads(out)

    return go


@pytest.mark.parametrize(
    ("argv", "check"),
    [
        (["attach", "nosuch", "--network", "default"], "attach.no_domain"),
        (["attach", "noacpi", "--network", "default", "--mac", "52:54:00:0c:00:09"], "attach.no_acpi"),
        (["attach", "run1", "--bridge", "vs-no-such-br", "--mac", "52:54:00:0c:00:09"], "xml.bridge_missing"),
        (["attach", "run1", "--bridge", "lo", "--mac", "52:54:00:0c:00:09"], "xml.not_a_bridge"),
        (["attach", "run1", "--network", "nonet", "--mac", "52:54:00:0c:00:09"], "xml.network_missing"),
        (["attach", "run1", "--network", "default", "--mac", "52:54:00:0c:00:01"], "xml.mac_in_use"),
        (["attach", "run1", "--network", "default", "--mac", "53:54:00:0c:00:09"], "xml.mac_invalid"),
        (["attach", "run1", "--direct", "lo:bridged"], "attach.refused"),
        (["attach", "off1", "--live", "--network", "default"], "attach.refused"),
        (["attach", "run1", "--network", "default"], "attach.refused"),  # --mac auto with no pool
        (["detach", "run1", "--mac", "52:54:00:0c:00:77"], "attach.refused"),
        (["detach", "nosuch", "--mac", "52:54:00:0c:00:01"], "attach.no_domain"),
        (["attach", "--network", "default"], "usage"),
        (["attach", "run1"], "usage"),
        (["detach", "run1"], "usage"),
    ],
)
def test_refusals_exit_2_and_change_nothing(run: Any, tmp_path: Path, argv: list[str], check: str) -> None:
    code, doc = run(*argv)
    assert (code, doc["exit"], doc["check"]) == (2, 2, check), doc
    assert doc["error"] and doc["hint"]
    assert not (tmp_path / "a.jsonl").exists()
    assert not (tmp_path / "store.db").exists()


@pytest.mark.parametrize("kind", ["--bridge", "--ovs"])
def test_unknown_bridge_with_ovsdb_unreadable_is_exit_3(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path))  # no db.sock there
    code, doc = run("attach", "run1", kind, "vs-no-such-br", "--mac", "52:54:00:0c:00:09")
    assert (code, doc["exit"]) == (3, 3), doc
    assert "cannot tell whether bridge vs-no-such-br exists" in doc["error"] and doc["hint"]
    assert not (tmp_path / "a.jsonl").exists()


def test_human_refusal_is_one_line_and_a_hint(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["-c", node, "attach", "noacpi", "--network", "default", "--mac", "52:54:00:0c:00:09"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[0].startswith("error: domain noacpi has no <features><acpi/>")
    assert err[1].startswith("  hint: add <acpi/>") and len(err) == 2


def test_read_domain_reports_state_acpi_arch_and_both_definitions(node: str) -> None:
    run1 = read_domain(node, "run1")
    assert (run1.state, run1.persistent, run1.acpi, run1.arch, run1.running) == (
        DomainState.RUNNING, True, True, "x86_64", True,
    )  # fmt: skip
    assert [v.mac for v in run1.live] == [v.mac for v in run1.config] == ["52:54:00:0c:00:01"]
    off = read_domain(node, "off1")
    assert (off.running, off.live, len(off.config)) == (False, (), 1)
    assert not read_domain(node, "noacpi").acpi
    assert read_domain(node, run1.uuid).name == "run1"
    with pytest.raises(NoSuchDomain):
        read_domain(node, "nosuch")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    e = open_store(f"sqlite:///{tmp_path / 'claim.db'}")
    pools.add_pool(e, MacPool("p", MacRange(BASE, BASE + 15), 60), now=0)
    return e


def test_claim_records_a_pool_mac_once(engine: Engine) -> None:
    got = claim(engine, BASE + 3, domain="web1", host="h", now=10.0)
    assert (got.pool, got.taken) == ("p", True)
    rec = alloc.records(engine)[0]
    assert (rec.mac, rec.state, rec.domain) == (BASE + 3, MacState.ALLOCATED, "web1")
    with pytest.raises(StoreRefused, match="allocated for web1"):
        claim(engine, BASE + 3, domain="db1", host="h", now=11.0)
    assert claim(engine, 0x5254B0000001, domain="web1", host="h", now=10.0).pool is None  # in no pool
    assert len(alloc.records(engine)) == 1


def test_claim_adopts_a_reservation_and_respects_quarantine(engine: Engine) -> None:
    (mac,) = alloc.allocate(engine, "p", 1, now=0.0, rng=__import__("random").Random(1), domain="web1", host="h")
    assert claim(engine, mac, domain="web1", host="h", now=1.0).taken is False  # adopted, not taken
    alloc.release(engine, mac, now=2.0, default_quarantine_s=60)
    with pytest.raises(StoreRefused, match="quarantined"):
        claim(engine, mac, domain="web1", host="h", now=30.0)
    assert claim(engine, mac, domain="db1", host="h", now=time.time()).taken is True  # quarantine over
    assert alloc.records(engine)[0].domain == "db1"
    assert parse_mac("52:54:a1:00:00:00") == BASE


def test_an_exhausted_pool_exits_4_before_anything_is_plugged(run: Any, tmp_path: Path) -> None:
    """The pool's only MAC is taken: attach stops at the allocation (exit 4, as ``mac allocate``),
    before libvirt is asked; the audit log was checked writable but holds no line."""
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    pools.add_pool(engine, MacPool("one", MacRange(BASE, BASE), 60), now=0)
    alloc.allocate(engine, "one", 1, now=time.time(), rng=__import__("random").Random(1), domain="x", host="h")
    code, doc = run("attach", "run1", "--network", "default")
    assert (code, doc["exit"]) == (4, 4), doc
    assert "exhausted" in doc["error"] or "fewer than" in doc["error"]
    assert (tmp_path / "a.jsonl").read_text() == ""
