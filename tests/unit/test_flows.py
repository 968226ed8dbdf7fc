"""Flows without traffic: the map's binary layout, the grouping and naming of talkers, the
delta between two reads, the documents, the shipped BPF object, and exit 3 when BPF cannot load."""

from __future__ import annotations

import errno
import json
import shutil
import socket
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vifscope.bind.flows import since, talkers, vif_flows
from vifscope.bind.join import bind
from vifscope.cli.main import main
from vifscope.model import DeclaredVif, DomainState, HostSnapshot, ObservedLink
from vifscope.model.flows import FlowCounters, FlowDirection, FlowGrouping, FlowRecord, FlowSample
from vifscope.report.flows import flows_report, unavailable_report
from vifscope.sources.flows import objpath, packet
from vifscope.sources.flows.collector import KEY, VAL, decode

OUT, IN = FlowDirection.OUT, FlowDirection.IN
MAC_A, MAC_B, MAC_GW = "52:54:00:00:00:0a", "52:54:00:00:00:0b", "52:54:00:00:00:99"


def rec(
    direction: FlowDirection, src: str | None, dst: str | None, *, ifindex: int = 10, proto: int = 6,
    sport: int = 40000, dport: int = 5201, nbytes: int = 1000, smac: str = MAC_A, dmac: str = MAC_B,
) -> FlowRecord:  # fmt: skip
    """A record on the tap of the guest whose MAC is ``smac``; ``dmac`` is the peer's."""
    if direction is IN:
        smac, dmac = dmac, smac
    eth = 0x0806 if src is None else (0x86DD if src and ":" in src else 0x0800)
    return FlowRecord(ifindex, direction, eth, proto, smac, dmac, src, dst, sport, dport, nbytes, 2, nbytes - 100)


def test_decode_matches_the_c_struct_layout() -> None:
    assert (KEY.size, VAL.size) == (56, 32)  # struct flow_key / flow_val in flows.bpf.c
    key = KEY.pack(
        7, 1, 17, 0x0800, bytes.fromhex("525400000001"), bytes.fromhex("525400000002"),
        socket.inet_aton("10.0.0.1") + bytes(12), socket.inet_aton("10.0.0.2") + bytes(12), 53, 33000,
    )  # fmt: skip
    r = decode(key, VAL.pack(1500, 3, 1200, 99))
    assert (r.ifindex, r.direction, r.proto, r.src, r.dst, r.sport, r.dport) == (
        7, IN, 17, "10.0.0.1", "10.0.0.2", 53, 33000,
    )  # fmt: skip
    assert (r.src_mac, r.bytes, r.packets, r.payload) == ("52:54:00:00:00:01", 1500, 3, 1200)
    v6 = decode(KEY.pack(1, 0, 58, 0x86DD, bytes(6), bytes(6), socket.inet_pton(socket.AF_INET6, "fd00::1"),
                         socket.inet_pton(socket.AF_INET6, "fd00::2"), 128, 0), VAL.pack(0, 0, 0, 0))  # fmt: skip
    assert (v6.src, v6.direction) == ("fd00::1", OUT)
    arp = decode(KEY.pack(1, 0, 0, 0x0806, bytes(6), bytes(6), bytes(16), bytes(16), 0, 0), VAL.pack(0, 0, 0, 0))
    assert arp.src is None and arp.dst is None


def test_grouping_sums_both_directions_and_names_peers() -> None:
    from vifscope.bind.peers import PeerNames
    from vifscope.model.flows import PeerName

    names = PeerNames({"10.0.0.2": PeerName("web")}, {MAC_B: PeerName("db", MAC_B), MAC_GW: PeerName("router")})
    records = [
        rec(OUT, "10.0.0.1", "10.0.0.2", nbytes=5000),
        rec(IN, "10.0.0.2", "10.0.0.1", sport=5201, dport=40000, nbytes=700),
        rec(OUT, "10.0.0.1", "192.0.2.7", dmac=MAC_GW, dport=443, nbytes=300),
        rec(OUT, None, None, proto=0, nbytes=42),  # ARP: keyed by the peer's MAC
    ]
    by_peer = talkers(records, FlowGrouping.PEER, names)
    assert [(t.key, t.peer, t.out_bytes, t.in_bytes) for t in by_peer] == [
        ("10.0.0.2", "web", 5000, 700),  # the address wins over the MAC (db)
        ("192.0.2.7", "router", 300, 0),  # no address known: the next hop's MAC names it
        (MAC_B, "db", 42, 0),
    ]
    assert [t.key for t in talkers(records, FlowGrouping.PORT, names)] == ["tcp/5201", "tcp/443", "arp"]
    assert [(t.key, t.flows) for t in talkers(records, FlowGrouping.PROTO, names)] == [("tcp", 3), ("arp", 1)]
    flows = talkers(records, FlowGrouping.FLOW, names)
    assert flows[0].key == "tcp :40000 > 10.0.0.2:5201" and flows[0].bytes == 5700
    v6 = talkers([rec(OUT, "fd00::1", "fd00::2", proto=17, dport=53)], FlowGrouping.FLOW, names)
    assert v6[0].key == "udp :40000 > [fd00::2]:53"


def _snapshot() -> HostSnapshot:
    def vif(dom: str, mac: str, tap: str) -> DeclaredVif:
        return DeclaredVif(dom, dom + "-uuid", DomainState.RUNNING, 0, "bridge", mac, source="br0", target=tap)

    links = tuple(
        ObservedLink(name, idx, "tun", True, "up", True, 1500, master="br0")
        for name, idx in (("vnet1", 10), ("vnet2", 11))
    )
    br = ObservedLink("br0", 2, "bridge", True, "up", True, 1500)
    return HostSnapshot(
        "h", "test:///", datetime.now(UTC), vifs=(vif("a", MAC_A, "vnet1"), vif("b", MAC_B, "vnet2")),
        links=(br, *links),
    )  # fmt: skip


def test_top_n_and_other_per_vif() -> None:
    records = [rec(OUT, "10.0.0.1", f"10.0.9.{i}", nbytes=1000 * i) for i in range(1, 6)]
    records.append(rec(IN, "10.0.0.1", "10.0.0.2", ifindex=11, nbytes=10, smac=MAC_B, dmac=MAC_A))
    got = vif_flows(bind(_snapshot()), records, FlowGrouping.PEER, top=2)
    a, b = got
    assert (a.domain, a.tap, [t.key for t in a.talkers]) == ("a", "vnet1", ["10.0.9.5", "10.0.9.4"])
    assert a.other is not None and (a.other.out_bytes, a.other.flows) == (6000, 3)
    assert (a.out_bytes, a.in_bytes) == (15000, 0)
    assert b.talkers[0].peer == "a" and b.other is None  # named by a's MAC


def test_a_macvtap_is_turned_around_to_the_guests_direction() -> None:
    """The guest's frames leave a macvtap through its transmit path: what a collector records
    as the device's egress (IN on a tap) is what the guest sent."""
    snap = _snapshot()
    mv = replace(snap.links[1], kind="macvtap", master=None, lower="eth9")
    vif = replace(snap.vifs[0], type="direct", source="eth9")
    # from the guest (10.0.0.1, MAC_A) to 10.0.0.2, as recorded on the device's egress
    sent = rec(IN, "10.0.0.1", "10.0.0.2", nbytes=700, smac=MAC_B, dmac=MAC_A)
    assert (sent.src_mac, sent.direction) == (MAC_A, IN)
    got = vif_flows(bind(replace(snap, links=(snap.links[0], mv), vifs=(vif,))), [sent], FlowGrouping.PEER, top=5)
    (a,) = got
    assert (a.tap, a.out_bytes, a.in_bytes) == ("vnet1", 700, 0)
    assert a.talkers[0].key == "10.0.0.2"  # the peer: where the guest sent it
    tap = vif_flows(bind(snap), [sent], FlowGrouping.PEER, top=5)[0]
    assert (tap.out_bytes, tap.in_bytes) == (0, 700)  # on a tap the same record is received


def test_since_subtracts_and_restarts_on_eviction() -> None:
    from vifscope.bind.flows import record_id

    first = rec(OUT, "10.0.0.1", "10.0.0.2", nbytes=1000)
    prev = {record_id(first): first}
    grown = rec(OUT, "10.0.0.1", "10.0.0.2", nbytes=1500)
    reborn = rec(OUT, "10.0.0.1", "10.0.0.2", nbytes=300)
    assert [r.bytes for r in since(prev, [grown])] == [500]
    assert [r.payload for r in since(prev, [grown])] == [500]
    assert [r.bytes for r in since(prev, [reborn])] == [300]
    assert since(prev, [first]) == []


def test_documents() -> None:
    snap = _snapshot()
    sample = FlowSample(
        (rec(OUT, "10.0.0.1", "10.0.0.2", nbytes=1250),), FlowCounters(5, 3, 1, 2, 4), 2.0, 0.5, "built"
    )
    vifs = vif_flows(bind(snap), sample.records, FlowGrouping.PEER, 10)
    doc = flows_report(vifs, sample, "peer", 10, ())
    assert doc["counters"] == {
        "packets": 5, "inserted": 3, "failed": 1, "entries": 2, "max_entries": 4, "evicted": 1, "dropped": 0,
    }  # fmt: skip
    t = doc["vifs"][0]["talkers"][0]
    assert t["out"] == {"bytes": 1250, "packets": 2, "payload_bytes": 1150, "bps": 5000.0}
    assert json.loads(json.dumps(doc)) == doc
    bad = unavailable_report("no BPF", "be root", ())
    assert bad["source_errors"] == [{"source": "bpf", "error": "no BPF", "hint": "be root"}]


def test_prebuilt_object_is_the_current_source_compiled() -> None:
    """The shipped object must be rebuilt with the source (clang output is deterministic)."""
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang not installed (scripts/setup.sh installs it)")
    multiarch = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True, check=True).stdout.strip()
    out = Path("/tmp") / f"vs-fl-unit-{objpath.source_digest()[:12]}.o"
    subprocess.run(
        [clang, "-O2", "-g", "-fdebug-compilation-dir=.", "-target", "bpf", "-Wall", "-Werror",
         f"-I/usr/include/{multiarch}", "-c", "flows.bpf.c", "-o", str(out)], cwd=objpath.BPF_DIR, check=True,
    )  # fmt: skip
    try:
        assert out.read_bytes() == objpath.PREBUILT.read_bytes(), "rebuild bpf/flows.bpf.o from flows.bpf.c"
    finally:
        out.unlink()


def test_usage_and_unloadable_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", "test:///default", "flows", "--top", "0"]) == 2
    junk = tmp_path / "flows.bpf.o"
    junk.write_bytes(b"not an ELF object")
    monkeypatch.setattr(objpath, "BUILT", tmp_path / "none.o")
    monkeypatch.setattr(objpath, "PREBUILT", junk)
    capsys.readouterr()
    assert main(["-c", "test:///default", "flows", "--json", "--interval", "0.01", "--collector", "bpf"]) == 3
    doc = json.loads(capsys.readouterr().out)
    err = next(e for e in doc["source_errors"] if e["source"] == "bpf")
    assert str(junk) in err["error"] and "setup.sh" in err["hint"]

    # auto (the default) falls back to AF_PACKET sampling; when that cannot open its sockets
    # either, both reasons and hints (a unit test may lack CAP_NET_RAW: the socket is refused
    # here either way; the fallback that runs is tests/integration/test_flows_packet.py's)
    def refuse() -> socket.socket:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(packet, "_new_socket", refuse)
    assert main(["-c", "test:///default", "flows", "--json", "--interval", "0.01", "--sample", "4"]) == 3
    err = next(e for e in json.loads(capsys.readouterr().out)["source_errors"] if e["source"] == "bpf")
    assert str(junk) in err["error"] and "fallback: AF_PACKET socket: EPERM" in err["error"], err
    assert "setup.sh" in err["hint"] and "fallback: run as root (CAP_NET_RAW)" in err["hint"], err


def test_tcx_from_kernel_config_else_version(tmp_path: Path) -> None:
    import gzip

    from vifscope.sources.flows.support import kernel_has_tcx

    cfg = tmp_path / "config.gz"
    cfg.write_bytes(gzip.compress(b"CONFIG_BPF=y\nCONFIG_NET_XGRESS=y\n"))
    assert kernel_has_tcx(cfg) is True
    cfg.write_bytes(gzip.compress(b"CONFIG_BPF=y\n# CONFIG_NET_XGRESS is not set\n"))
    assert kernel_has_tcx(cfg) is False
    missing = tmp_path / "none.gz"
    assert (kernel_has_tcx(missing, "6.5.0-1"), kernel_has_tcx(missing, "6.18.44-x")) == (False, True)
    assert kernel_has_tcx(missing, "weird") is None


def test_exporter_families_bound_cardinality_to_top_n_plus_other() -> None:
    from vifscope.exporter.flows import FlowView, flow_families

    records = [rec(OUT, "10.0.0.1", f"10.0.9.{i}", nbytes=100 * i) for i in range(1, 40)]
    vifs = vif_flows(bind(_snapshot()), records, FlowGrouping.PEER, top=3)
    fams = {f.name: f for f in flow_families(FlowView(vifs, FlowCounters(10, 50, 0, 40, 64), 2, 0))}
    rows = fams["vifscope_vif_flow_bytes_total"].rows
    peers = [labels[4] for labels, _ in rows]
    assert peers == ["10.0.9.39", "10.0.9.38", "10.0.9.37", "other"]  # 39 peers: 3 + other
    assert sum(v for _, v in rows) == sum(r.bytes for r in records)
    assert fams["vifscope_flow_map_evicted_total"].rows == (((), 10.0),)
    assert list(flow_families(None)) == []


def test_tracker_reports_bpf_down_once_and_keeps_answering() -> None:
    from vifscope.exporter.flows import FlowTracker
    from vifscope.sources.flows.libbpf import BpfUnavailable

    calls = []

    def refuse(max_flows: int) -> Any:
        calls.append(max_flows)
        raise BpfUnavailable("the BPF program did not load: EPERM", "run as root")

    tracker = FlowTracker(make=refuse)
    for _ in range(2):
        view, err = tracker.update(bind(_snapshot()), 1.0)
        assert view is None and err is not None and (err.source, err.hint) == ("bpf", "run as root")
    assert calls == [65536]  # not retried every scrape


def test_table_shows_hostile_names_as_text() -> None:
    from rich.console import Console

    from vifscope.report.flows import vif_table

    snap = _snapshot()
    evil = replace(snap, vifs=(replace(snap.vifs[0], domain="[bold]x[/bold] $(id)"), snap.vifs[1]))
    records = [rec(IN, "10.0.0.2", "10.0.0.1", smac=MAC_A, dmac=MAC_B)]
    sample = FlowSample(tuple(records), FlowCounters(), 1.0, 0.1, "built")
    doc = flows_report(vif_flows(bind(evil), records, FlowGrouping.PEER, 5), sample, "peer", 5, ())
    console = Console(width=200, record=True)
    for v in doc["vifs"]:
        console.print(vif_table(v, "peer"))
    text = console.export_text()
    assert "[bold]x[/bold] $(id)" in text


def test_watch_flows_text_line() -> None:
    from vifscope.report.flows import talker_dict
    from vifscope.watch.flows import flows_text
    from vifscope.watch.output import TEXT

    records = [rec(OUT, "10.0.0.1", "10.0.0.2", nbytes=3 * 1024 * 1024), rec(OUT, "10.0.0.1", "10.0.9.9", nbytes=512)]
    (a, _b) = vif_flows(bind(_snapshot()), records, FlowGrouping.PEER, top=1)
    assert a.other is not None
    doc = {
        "event": "flows", "domain": a.domain, "mac": a.mac, "target": a.tap, "seconds": 60.0,
        "out_bytes": a.out_bytes, "in_bytes": a.in_bytes,
        "talkers": [talker_dict(t, 60.0) for t in (*a.talkers, a.other)],
    }  # fmt: skip
    line = flows_text(doc)
    assert line == f"flows a {MAC_A} vnet1 over 60 s: out 3.0 MiB, in 0 B; 10.0.0.2 (b) 3.0 MiB, other 512 B"
    assert TEXT["flows"](doc) == line


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (("vifscope", "flows", "--max-flows", "16", "dom"), ("vifscope", "flows", "--max-flows", "64", "dom")),
        (
            ("vifscope", "watch", "--flows", "10", "--max-flows=16"),
            ("vifscope", "watch", "--flows", "10", "--max-flows=64"),
        ),
        (("vifscope", "exporter", "--flows"), ("vifscope", "exporter", "--flows", "--max-flows", "64")),
    ],
)
def test_map_full_fix_sets_a_bigger_max_flows(argv: tuple[str, ...], want: tuple[str, ...]) -> None:
    from vifscope.checks.flows import _restart
    from vifscope.cli.main import build_parser
    from vifscope.model.flows import FlowMapFill

    fix = _restart(FlowMapFill(7, 16, 16, 99, argv))
    assert fix.argvs == (("kill", "99"), want)  # 4 × 16 entries, a power of two
    assert build_parser(list(want[1:])).parse_args(list(want[1:])).max_flows == 64  # vifscope takes it
