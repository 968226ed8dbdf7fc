"""``vifscope mac`` end to end in-process: a real SQLite store, libvirt's test driver with a node
file (real connection code, no daemon), this host's real links for host-link clashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vifscope.checks.macs import StoreView, store_findings
from vifscope.cli.main import main
from vifscope.model import DeclaredVif, DomainState
from vifscope.model.mac import MacPool, MacRange, MacRecord, MacState, parse_mac

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
POOL = "52:54:00:aa:00:00-52:54:00:aa:00:03"


def host_link_mac() -> str:
    """A MAC a real link of this host has (not the all-zero loopback)."""
    for path in sorted(Path("/sys/class/net").glob("*/address")):
        mac = path.read_text().strip()
        if mac and mac != "00:00:00:00:00:00" and len(mac) == 17:
            return mac
    pytest.skip("no link with a MAC in this namespace")


def domain(name: str, macs: list[str], shutoff: bool = False) -> str:
    ifaces = "".join(
        f"<interface type='network'><mac address='{m}'/><source network='default'/></interface>" for m in macs
    )
    state = "<test:runstate>5</test:runstate>" if shutoff else ""
    return (
        f"<domain type='test'><name>{name}</name><memory>65536</memory><vcpu>1</vcpu>"
        f"<os><type>hvm</type></os><devices>{ifaces}</devices>{state}</domain>"
    )


@pytest.fixture
def node(tmp_path: Path) -> str:
    """web1 and web2 share a MAC (web2 shut off); db1 has two MACs inside POOL; odd1 has a host link's MAC."""
    doms = [
        domain("web1", ["52:54:00:00:00:01"]),
        domain("web2", ["52:54:00:00:00:01"], shutoff=True),
        domain("db1", ["52:54:00:aa:00:00", "52:54:00:aa:00:02"]),
        domain("odd1", [host_link_mac()]),
    ]
    path = tmp_path / "node.xml"
    path.write_text(f"<node xmlns:test='{TEST_NS}'>{''.join(doms)}</node>")
    return f"test://{path}"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store" / "v.db"
    monkeypatch.setenv("VIFSCOPE_DB", f"sqlite:///{path}")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def checks(doc: dict) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    out: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for f in doc["findings"]:
        out.setdefault(f["check"], []).append(f)
    return out


def test_conflicts_on_the_host_without_a_store(capsys: pytest.CaptureFixture[str], node: str, db: Path) -> None:
    code, doc = run(capsys, "mac", "conflicts", "-c", node)
    assert code == 1 and doc["store"] is None and not db.exists()  # no empty database left behind
    found = checks(doc)
    dup = found["mac.duplicate"]
    assert {f["domain"] for f in dup} == {"web1", "web2"} and all(f["severity"] == "warning" for f in dup)
    (clash,) = found["mac.host_conflict"]
    assert clash["domain"] == "odd1" and clash["mac"] == host_link_mac()
    assert "mac.unrecorded" not in found


def test_import_then_allocation_never_hands_out_a_mac_in_use(
    capsys: pytest.CaptureFixture[str], node: str, db: Path
) -> None:
    assert run(capsys, "mac", "pool", "add", "p", "--range", POOL)[0] == 0
    code, doc = run(capsys, "mac", "conflicts", "-c", node)
    assert {f["mac"] for f in checks(doc)["mac.unrecorded"]} == {"52:54:00:aa:00:00", "52:54:00:aa:00:02"}
    code, doc = run(capsys, "mac", "import", "-c", node)
    assert code == 0 and len(doc["added"]) == 4 and doc["known"] == 0  # every distinct MAC, in a pool or not
    assert run(capsys, "mac", "import", "-c", node)[1]["known"] == 4  # again: nothing new
    code, doc = run(capsys, "mac", "allocate", "--pool", "p", "--count", "2", "--domain", "new1")
    assert code == 0 and doc["pool"] == "p" and sorted(doc["macs"]) == ["52:54:00:aa:00:01", "52:54:00:aa:00:03"]
    code, doc = run(capsys, "mac", "allocate", "--pool", "p")
    assert code == 4 and "nothing was allocated" in doc["error"] and doc["hint"]
    (row,) = run(capsys, "mac", "pool", "list")[1]["pools"]
    assert (row["size"], row["used"], row["quarantined"], row["free"]) == (4, 4, 0, 0)
    assert "mac.unrecorded" not in checks(run(capsys, "mac", "conflicts", "-c", node)[1])


def test_releasing_a_mac_still_in_use_is_reported(capsys: pytest.CaptureFixture[str], node: str, db: Path) -> None:
    run(capsys, "mac", "pool", "add", "p", "--range", POOL, "--quarantine", "600")
    run(capsys, "mac", "import", "-c", node)
    code, doc = run(capsys, "mac", "release", "52:54:00:AA:00:02")
    assert code == 0 and doc["state"] == "quarantined" and doc["mac"] == "52:54:00:aa:00:02"
    (f,) = checks(run(capsys, "mac", "conflicts", "-c", node)[1])["mac.released_in_use"]
    assert f["domain"] == "db1" and f["severity"] == "warning"  # still in quarantine
    run(capsys, "mac", "import", "-c", node)  # revives it
    assert "mac.released_in_use" not in checks(run(capsys, "mac", "conflicts", "-c", node)[1])


@pytest.mark.parametrize(
    "argv",
    [
        ["mac", "pool", "add", "bad", "--range", "52:54:00:00:00:09-52:54:00:00:00:01"],
        ["mac", "pool", "add", "multi", "--prefix", "01:00:5e"],
        ["mac", "pool", "add", "clash", "--prefix", "52:54:00:aa"],
        ["mac", "allocate", "--pool", "nope"],
        ["mac", "release", "not-a-mac"],
        ["mac", "pool", "remove", "nope"],
    ],
)
def test_refusals_exit_2_with_one_line_and_a_hint(
    capsys: pytest.CaptureFixture[str], db: Path, argv: list[str]
) -> None:
    assert main(["mac", "pool", "add", "p", "--range", POOL]) == 0
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_unavailable_store_and_libvirt_exit_3(capsys: pytest.CaptureFixture[str], tmp_path: Path, db: Path) -> None:
    code, doc = run(capsys, "mac", "pool", "list", "--db", f"postgresql+psycopg://nobody@/x?host={tmp_path}")
    assert code == 3 and "unavailable" in doc["error"] and doc["hint"]
    missing = f"test://{tmp_path / 'no-such-node.xml'}"
    assert run(capsys, "mac", "import", "-c", missing)[0] == 3
    assert run(capsys, "mac", "conflicts", "-c", missing)[0] == 3


def test_human_allocate_prints_one_mac_a_line(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    main(["mac", "pool", "add", "p", "--prefix", "52:54:00:3a"])
    capsys.readouterr()
    assert main(["mac", "allocate", "--pool", "p", "--count", "3"]) == 0
    lines = capsys.readouterr().out.split()
    assert len(set(lines)) == 3 and all(parse_mac(m) >> 16 == 0x5254003A for m in lines)


def vif(dom: str, mac: str, index: int = 0) -> DeclaredVif:
    return DeclaredVif(dom, f"uuid-{dom}", DomainState.RUNNING, index, "network", mac)


def test_store_findings_each_on_its_own_case() -> None:
    base = 0x525400AA0000
    pools = (MacPool("p", MacRange(base, base + 9), 60),)
    vifs = (
        vif("a", "52:54:00:aa:00:00"),
        vif("b", "52:54:00:aa:00:01"),
        vif("c", "52:54:00:aa:00:02"),
        vif("d", "52:54:00:aa:00:03"),
    )
    records = (
        # 00: unrecorded (no row); 01: consistent; 02: released, expired; 03: another domain
        MacRecord(base + 1, MacState.ALLOCATED, "p", "b", "h"),
        MacRecord(base + 2, MacState.QUARANTINED, "p", "c", "h", reusable_at=50.0),
        MacRecord(base + 3, MacState.ALLOCATED, "p", "zz", "h"),
        MacRecord(base + 4, MacState.IMPORTED, "p", "gone", "h"),  # stale: imported here, no NIC now
        MacRecord(base + 5, MacState.ALLOCATED, "p", "later", "h"),  # allocated before its domain: fine
        MacRecord(base + 6, MacState.IMPORTED, "p", "x", "other-host"),  # another host's: not ours to judge
    )
    found = store_findings(vifs, StoreView(records, pools, "h", now=100.0))
    got = {(f.check, f.mac, f.severity.value) for f in found}
    assert got == {
        ("mac.unrecorded", "52:54:00:aa:00:00", "warning"),
        ("mac.released_in_use", "52:54:00:aa:00:02", "error"),  # its quarantine is over: it can be handed out now
        ("mac.store_mismatch", "52:54:00:aa:00:03", "warning"),
        ("mac.store_stale", "52:54:00:aa:00:04", "info"),
    }
    assert store_findings(vifs[1:2], StoreView(records[:1], pools, "h", now=0.0)) == ()


@pytest.mark.parametrize(
    "where",
    [
        lambda url: ["mac", "--db", url, "pool", "add", "p", "--prefix", "52:54:00:3b"],
        lambda url: ["mac", "pool", "--db", url, "add", "p", "--prefix", "52:54:00:3b"],
        lambda url: ["mac", "pool", "add", "p", "--prefix", "52:54:00:3b", "--db", url],
    ],
    ids=["before-the-action", "between", "after"],
)
def test_db_before_or_after_the_action(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db: Path, where: object
) -> None:
    """Wherever --db stands, the pool lands in that store and not in $VIFSCOPE_DB's (``db``)."""
    url = f"sqlite:///{tmp_path / 'here.db'}"
    assert run(capsys, *where(url))[0] == 0  # type: ignore[operator]
    code, doc = run(capsys, "mac", "pool", "list", "--db", url)
    assert code == 0 and [p["name"] for p in doc["pools"]] == ["p"]
    assert not db.exists()
