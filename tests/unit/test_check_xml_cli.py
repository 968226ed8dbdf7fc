"""``vifscope check-xml`` end to end against libvirt's test driver (no daemon): exit codes,
the JSON document, every corpus domain without a crash, and fixes for hostile names that
paste back into exactly their argv."""

from __future__ import annotations

import json
import shlex
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.unit.hostile import DOMAINS, IFACES, NETWORKS
from tests.unit.ipjson import bridge, snapshot
from tests.unit.test_check_xml import DATA
from tests.unit.test_fix_quoting import _sh_words
from vifscope.checks.xmlbase import CHECK_IDS, HostView
from vifscope.checks.xmlcheck import check_domain
from vifscope.cli import main as cli
from vifscope.cli.checkxml import parse_file
from vifscope.lab.host import ensure_ovs
from vifscope.model import LibvirtNetwork, Shaping
from vifscope.report.findings import finding_dict

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "domains"
TEST_URI = "test:///default"
OK_XML = """<domain type='qemu'><name>cx-ok</name><memory>65536</memory><os><type>hvm</type></os><devices>
<interface
  type='network'><mac address='52:54:00:c7:00:01'/><source network='default'/><model type='virtio'/></interface>
</devices></domain>"""


@pytest.fixture(autouse=True, scope="module")
def _ovs_answers() -> None:
    """check-xml reads the host's OVSDB like doctor; with ovsdb-server down a file naming a
    bridge no kernel link has cannot be answered (exit 3), so these cases need it up, as on a
    host that runs Open vSwitch. (The e2e suite starts it the same way.)"""
    ensure_ovs()


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """check-xml with a store that does not exist (none configured on the test machine counts)."""

    def go(*files: str, uri: str = TEST_URI, json_out: bool = True) -> tuple[int, Any]:
        db = f"sqlite:///{tmp_path / 'no-store.db'}"
        argv = ["-c", uri, "check-xml", *(["--json"] if json_out else []), "--db", db, *files]
        code = cli.main(argv)
        out = capsys.readouterr()
        return code, (json.loads(out.out) if json_out else out)

    return go


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_clean_file_exits_0(run: Any, tmp_path: Path) -> None:
    code, doc = run(_write(tmp_path, "ok.xml", OK_XML))
    assert code == 0
    assert doc["files"] == [{"file": str(tmp_path / "ok.xml"), "domain": "cx-ok", "findings": []}]
    assert doc["uri"] == TEST_URI and doc["source_errors"] == []


def test_an_error_finding_exits_1_with_doctors_fields(run: Any, tmp_path: Path) -> None:
    bad = OK_XML.replace("network='default'", "network='cx-nowhere'")
    code, doc = run(_write(tmp_path, "bad.xml", bad))
    assert code == 1
    (finding,) = doc["files"][0]["findings"]
    assert finding["check"] == "xml.network_missing" and finding["severity"] == "error"
    assert finding["title"] == CHECK_IDS["xml.network_missing"][0]
    assert {"check", "severity", "category", "message", "domain", "mac", "target", "subject", "evidence"} <= set(
        finding
    )
    assert ["virsh", "-c", TEST_URI, "net-start", "--", "cx-nowhere"] in finding["fix_argv"]
    assert finding["fix_chain"] == "&&" and finding["fix_note"]
    assert doc["summary"] == {"error": 1, "warning": 0, "info": 0}


def test_warnings_alone_exit_0(run: Any, tmp_path: Path) -> None:
    code, doc = run(_write(tmp_path, "e1000.xml", OK_XML.replace("'virtio'", "'e1000'")))
    assert code == 0
    assert [f["check"] for f in doc["files"][0]["findings"]] == ["xml.model_not_virtio"]


@pytest.mark.parametrize("name", ["missing.xml", "usage--not-xml.xml", "usage--not-a-domain.xml"])
def test_usage_errors_exit_2_with_one_line_and_a_hint(run: Any, tmp_path: Path, name: str) -> None:
    path = str(DATA / name) if name.startswith("usage") else str(tmp_path / name)
    ok = _write(tmp_path, "ok.xml", OK_XML)
    code, out = run(ok, path, json_out=False)
    assert code == 2
    lines = out.err.strip().splitlines()
    assert len(lines) == 2 and path in lines[0] and lines[1].strip().startswith("hint:")
    assert out.out == ""


def test_libvirt_down_exits_3(run: Any, tmp_path: Path) -> None:
    code, doc = run(_write(tmp_path, "ok.xml", OK_XML), uri=f"test://{tmp_path}/no-such-node.xml")
    assert code == 3
    assert [e["source"] for e in doc["source_errors"]] == ["libvirt"]
    assert doc["files"][0]["findings"] == []  # no network is "missing" when none could be read


def test_an_unreadable_store_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database at all")
    code = cli.main(
        ["-c", TEST_URI, "check-xml", "--json", "--db", f"sqlite:///{junk}", _write(tmp_path, "o.xml", OK_XML)]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 3 and [e["source"] for e in doc["source_errors"]] == ["store"]


def test_every_corpus_domain_is_checked_without_a_crash(run: Any) -> None:
    files = sorted(str(p) for p in CORPUS.glob("*.xml"))
    assert len(files) >= 60
    code, doc = run(*files)
    assert code in (0, 1)
    assert [f["file"] for f in doc["files"]] == files
    checks = {f["check"] for d in doc["files"] for f in d["findings"]}
    assert checks <= set(CHECK_IDS) and len(checks) >= 5
    assert sum(len(d["findings"]) for d in doc["files"]) > len(files)


def test_the_human_view_prints_each_file_and_a_summary(run: Any, tmp_path: Path) -> None:
    code, out = run(_write(tmp_path, "ok.xml", OK_XML), str(DATA / "mac_random.xml"), json_out=False)
    assert code == 1  # br0 does not exist on this machine
    assert "domain cx-ok: no findings" in out.out and "xml.mac_random" in out.out
    assert "check-xml: 2 file(s)" in out.out


# --- hostile names -------------------------------------------------------------------------


def _hostile_xml(domain: str, bridge_name: str, network: str, inactive: str) -> str:
    """A domain (named ``domain``) with a missing bridge, a missing network, an inactive
    network and no MAC, written with ElementTree so quotes are escaped as libvirt reads them."""
    root = ET.Element("domain", type="qemu")
    ET.SubElement(root, "name").text = domain
    devices = ET.SubElement(root, "devices")
    for itype, attr, value in (("bridge", "bridge", bridge_name), ("network", "network", network)):
        iface = ET.SubElement(devices, "interface", type=itype)
        ET.SubElement(iface, "source", {attr: value})
        ET.SubElement(iface, "model", type="virtio")
    iface = ET.SubElement(devices, "interface", type="network")
    ET.SubElement(iface, "source", network=inactive)
    ET.SubElement(iface, "model", type="virtio")
    iface = ET.SubElement(devices, "interface", type="bridge")
    ET.SubElement(iface, "source", bridge="brdown")
    ET.SubElement(iface, "model", type="virtio")
    return ET.tostring(root, encoding="unicode")


def _hostile_cases() -> list[tuple[str, str, str, str]]:
    n = max(len(DOMAINS), len(IFACES), len(NETWORKS))
    return [
        (DOMAINS[i % len(DOMAINS)], IFACES[i % len(IFACES)], NETWORKS[i % len(NETWORKS)], NETWORKS[(i + 1) % 6])
        for i in range(n)
    ]


def _words(f: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for i, argv in enumerate(f["fix_argv"]):
        out += ([f["fix_chain"]] if i else []) + argv
    return out


@pytest.mark.parametrize(("domain", "br", "net", "idle"), _hostile_cases())
def test_fixes_for_hostile_names_split_back_into_their_argv(
    domain: str, br: str, net: str, idle: str, tmp_path: Path
) -> None:
    nets = (LibvirtNetwork(idle, "u", False, False, "nat", "virbr9"),)
    snap = snapshot([], [bridge("brdown", up=False)], networks=nets)
    dom = parse_file("h.xml", _hostile_xml(domain, br, net, idle))
    assert dom.name == domain
    found = [finding_dict(f) for f in check_domain(dom, HostView(snap, None, Shaping(True, True)))]
    assert {f["check"] for f in found} >= {"xml.bridge_missing", "xml.network_missing", "xml.network_inactive"}
    intended = {
        "xml.bridge_missing": [
            ["ip", "link", "add", "name", br, "type", "bridge"],
            ["ip", "link", "set", "dev", br, "up"],
        ],
        "xml.network_inactive": [
            ["virsh", "-c", snap.uri, "net-start", "--", idle],
            ["virsh", "-c", snap.uri, "net-autostart", "--", idle],
        ],
        "xml.mac_random": [["vifscope", "mac", "allocate", "--pool", "POOL", f"--domain={domain}"]],
        "xml.bridge_down": [["ip", "link", "set", "dev", "brdown", "up"]],
    }
    for f in found:
        line = f["fix"]
        assert "\n" not in line
        subprocess.run(["/bin/sh", "-n", "-c", line], check=True)
        assert shlex.split(line, comments=True) == _words(f), (f["check"], line)
        if f["fix_argv"]:  # what /bin/sh really passes, printf standing in for each program
            assert _sh_words(f["fix_argv"], tmp_path) == f["fix_argv"], (f["check"], line)
        if f["check"] in intended:
            assert f["fix_argv"] == intended[f["check"]], f["check"]
    missing_net = next(f for f in found if f["check"] == "xml.network_missing")
    assert ["virsh", "-c", snap.uri, "net-start", "--", net] in missing_net["fix_argv"]
    assert not list(tmp_path.iterdir())  # no "$(touch x)" ever ran


def test_no_file_is_a_usage_error(run: Any) -> None:
    code, out = run(json_out=False)
    assert code == 2 and "at least one FILE" in out.err and "hint:" in out.err


def _user_nics(name: str, macs: list[str], dom_type: str = "qemu") -> str:
    nics = "".join(f"<interface type='user'><mac address='{m}'/><model type='virtio'/></interface>" for m in macs)
    head = f"<domain type='{dom_type}'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os>"
    return head + f"<devices>{nics}</devices></domain>"


def test_a_mac_of_a_domain_in_libvirt_and_one_the_store_gave_away(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A test-driver node where web1 uses 52:54:00:c7:00:01, and a real SQLite store where a
    pool allocated a MAC for db9: a file using both gets both findings; as db9, only one."""
    node = tmp_path / "node.xml"
    node.write_text(f"<node>{_user_nics('web1', ['52:54:00:c7:00:01'], 'test')}</node>")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert cli.main(["mac", "--db", db, "pool", "add", "p", "--prefix", "52:54:00:3c"]) == 0
    capsys.readouterr()
    assert cli.main(["mac", "--db", db, "allocate", "--pool", "p", "--domain", "db9", "--json"]) == 0
    (given,) = json.loads(capsys.readouterr().out)["macs"]
    for name, want in (("cx-ok", {"xml.mac_in_use", "xml.mac_store_taken"}), ("db9", {"xml.mac_in_use"})):
        path = _write(tmp_path, f"{name}.xml", _user_nics(name, ["52:54:00:c7:00:01", given]))
        code = cli.main(["-c", f"test://{node}", "check-xml", "--json", "--db", db, path])
        doc = json.loads(capsys.readouterr().out)
        assert code == 1 and doc["store"] == db
        assert {f["check"] for f in doc["files"][0]["findings"]} == want, name


def test_no_store_configured_and_no_embedded_file_is_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vifscope.cli.checkxml import configured_store_url
    from vifscope.store import url as store_url

    if store_url.CONFIG_PATH.exists():
        pytest.skip(f"{store_url.CONFIG_PATH} exists on this machine")
    monkeypatch.delenv(store_url.ENV_URL, raising=False)
    monkeypatch.setattr(store_url, "DEFAULT_DB", tmp_path / "never.db")
    assert configured_store_url(None) is None
    (tmp_path / "never.db").write_bytes(b"")
    assert configured_store_url(None) == f"sqlite:///{tmp_path / 'never.db'}"
    assert configured_store_url("sqlite:///x.db") == "sqlite:///x.db"
