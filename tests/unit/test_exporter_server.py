"""The exporter never hangs and serves HTTP: a real libvirt client against a socket that never
answers (what a hung libvirtd looks like), the real ``vifscope exporter`` process on loopback
against libvirt's test driver, and the audit-log tail on real files.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vifscope.actions.audit import AuditLog, AuditRecord
from vifscope.cli.exporter import parse_listen
from vifscope.cli.main import build_parser
from vifscope.exporter.collector import Exporter
from vifscope.sources.audit_log import ActionCount, AuditLogTail
from vifscope.sources.ovs import ovs_installed

T = TypeVar("T")


@pytest.fixture
def silent_libvirt(tmp_path: Path) -> Iterator[str]:
    """A unix socket that accepts connections and never answers: the libvirt client blocks."""
    path = tmp_path / "libvirt-sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(16)
    try:
        yield f"qemu+unix:///system?socket={path}"
    finally:
        srv.close()


def samples(text: bytes, name: str) -> dict[str, float]:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            if s.name == name:
                out[s.labels.get("source", "")] = s.value
    return out


def libvirt_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "vifscope-libvirt")


def answered_within(limit: float, fn: Callable[[], T]) -> T:
    """``fn()``'s result, failing the test if it has not answered after ``limit`` seconds (run in a
    thread, so a hang is a failure, not a stuck suite). A limit, not a measurement: how long a
    scrape takes is a figure of bench/exporter_scrape.py and bench/load.py, not of this test."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(limit)
    assert out, f"no answer after {limit} s"
    return out[0]


def test_stuck_libvirt_is_source_down_not_a_hang(silent_libvirt: str, tmp_path: Path) -> None:
    """A stuck source costs its deadline, not forever: the scrape answers (well within 10x the
    deadline) and says the source is down; later scrapes do not queue behind the stuck read."""
    deadline = 0.5
    exporter = Exporter(silent_libvirt, timeout=deadline, audit_log=tmp_path / "none.jsonl")
    before = libvirt_threads()
    text = answered_within(10 * deadline, exporter.render_metrics)
    up = samples(text, "vifscope_source_up")
    assert up["libvirt"] == 0 and up["netlink"] == 1 and up["audit-log"] == 1
    # Later scrapes do not pile up threads behind the stuck one, and say why libvirt is down.
    for _ in range(3):
        assert samples(answered_within(10 * deadline, exporter.render_metrics), "vifscope_source_up")["libvirt"] == 0
    assert libvirt_threads() - before == 1
    err = next(e for e in exporter.scrape().snapshot.errors if e.source == "libvirt")
    assert "still running" in err.error and err.hint


def test_unreachable_libvirt_is_an_error_with_its_hint(tmp_path: Path) -> None:
    exporter = Exporter(f"qemu+unix:///system?socket={tmp_path}/absent", timeout=2.0, audit_log=None)
    scrape = exporter.scrape()
    err = next(e for e in scrape.snapshot.errors if e.source == "libvirt")
    assert "cannot connect" in err.error and "libvirtd" in err.hint
    # OVS installed: its series is there, up or not (a session may not have started it).
    ovs = {"ovs": _ovs_up()} if ovs_installed() else {}
    assert dict(scrape.sources) == {"libvirt": False, "netlink": True, **ovs}


def _ovs_up() -> bool:
    return subprocess.run(["ovs-vsctl", "--timeout=2", "show"], capture_output=True, check=False).returncode == 0


def test_audit_log_tail_counts_incrementally(tmp_path: Path) -> None:
    log = tmp_path / "actions.jsonl"
    tail = AuditLogTail(log)
    assert tail.read() == ()  # no log yet: no action yet, not an error
    writer = AuditLog(log)  # the actions layer's own writer (doctor --fix, watch --heal)

    def rec(actor: str, phase: str, result: str) -> AuditRecord:
        return AuditRecord("2026-01-01T00:00:00+00:00", "run1", actor, phase, "attach", "vnet0", ("ip",), result)

    for r in (rec("heal", "apply", "ok"), rec("heal", "verify", "verified"), rec("doctor-fix", "apply", "ok")):
        writer.write(r)
    writer.write(rec("heal", "apply", "ok"))
    assert tail.read() == (
        ActionCount("doctor-fix", "apply", "ok", 1),
        ActionCount("heal", "apply", "ok", 2),
        ActionCount("heal", "verify", "verified", 1),
    )
    line = json.dumps({"actor": "heal", "phase": "rollback", "result": "rolled-back"})
    with log.open("a") as fh:  # a writer half-way through a line: counted once it is complete
        fh.write(line[:20])
    assert len(tail.read()) == 3
    with log.open("a") as fh:
        fh.write(line[20:] + "\nnot json\n" + json.dumps({"actor": "heal", "phase": "apply", "result": "x y!"}) + "\n")
    counts = {(a.actor, a.phase, a.result): a.count for a in tail.read()}
    assert counts == {
        ("doctor-fix", "apply", "ok"): 1,
        ("heal", "apply", "ok"): 2,
        ("heal", "verify", "verified"): 1,
        ("heal", "rollback", "rolled-back"): 1,
        ("heal", "apply", "other"): 1,  # a result that is not a short word never becomes a label value
        ("invalid", "other", "other"): 1,
    }
    # Rotation: a new file is read from its start and added on top; counts never go down.
    log.rename(tmp_path / "actions.jsonl.1")
    writer.write(rec("heal", "apply", "ok"))
    assert {(a.actor, a.phase, a.result): a.count for a in tail.read()}[("heal", "apply", "ok")] == 3


def test_audit_log_that_is_a_directory_is_a_source_error(tmp_path: Path) -> None:
    exporter = Exporter("test:///default", timeout=2.0, audit_log=tmp_path)
    scrape = exporter.scrape()
    assert ("audit-log", False) in scrape.sources
    assert scrape.actions == ()


def test_default_listen_is_loopback_and_not_the_libvirt_exporters_port() -> None:
    """9177 is the libvirt exporter's in Prometheus' port allocations (Debian's
    prometheus-libvirt-exporter listens there): a host running both must start both."""
    args = build_parser(["exporter"]).parse_args(["exporter"])
    host, port = parse_listen(args.listen)
    assert host == "127.0.0.1" and port != 9177
    assert 1024 <= port < 32768  # unprivileged, and below Linux's ephemeral range (outgoing connections)


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:18437") == ("127.0.0.1", 18437)
    assert parse_listen("[::1]:18437") == ("::1", 18437)
    assert parse_listen(":18437") == ("0.0.0.0", 18437)
    for bad in ("18437", "host:", "host:http", "h:70000"):
        with pytest.raises(ValueError):
            parse_listen(bad)


@pytest.fixture
def exporter_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    cmd = [sys.executable, "-m", "vifscope", "-c", "test:///default", "exporter", "--json"]
    cmd += ["--listen", "127.0.0.1:0", "--audit-log", str(tmp_path / "a.jsonl")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        event = json.loads(line)
        assert event["event"] == "listening", line
        yield proc, event["url"]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_http_metrics_404_and_sigterm(exporter_process: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = exporter_process
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = resp.read()
    bound = [
        s for f in text_string_to_metric_families(body.decode()) for s in f.samples if s.name == "vifscope_vif_bound"
    ]
    assert [s.labels["domain"] for s in bound] == ["test"]  # the test driver's one domain
    req = urllib.request.Request(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "0.3"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    with pytest.raises(urllib.error.HTTPError) as nf:
        urllib.request.urlopen(url.replace("/metrics", "/nope"), timeout=10)
    assert nf.value.code == 404
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_listen_on_a_busy_port_is_one_line_and_exit_3() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "vifscope", "-c", "test:///default", "exporter", "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        busy.close()
    assert proc.returncode == 3
    assert proc.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "hint:" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_listen_is_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vifscope", "exporter", "--listen", "nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2 and "--listen wants HOST:PORT" in proc.stderr


def test_once_prints_a_scrape_and_exits_3_without_libvirt(tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/absent"
    cmd = [sys.executable, "-m", "vifscope", "-c", uri, "exporter", "--once", "--no-checks", "--timeout", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 3, proc.stderr
    assert samples(proc.stdout.encode(), "vifscope_source_up")["libvirt"] == 0
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60, check=False)
    doc = json.loads(proc.stdout)
    assert {"name": "vifscope_source_up", "labels": {"source": "libvirt"}, "value": 0.0} in doc["metrics"]
