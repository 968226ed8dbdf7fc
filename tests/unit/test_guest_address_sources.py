"""Where status's guest addresses come from, through real libvirt (its test driver: a node file,
no daemon) and the real CLI: the agent source only with ``--agent`` (a read-write connection),
a read-only connection refused without an error. (ARP: tests/integration/test_guest_arp.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from vifscope.sources.libvirt.agent import NOT_ASKED, ask_agents, ask_all, read_agent_addresses

IFACE = "<interface type='bridge'><mac address='{mac}'/><source bridge='vs-g-nobr'/>{target}</interface>"


def _node(tmp_path: Path) -> Path:
    """Two running NICs and a shut-off domain. libvirt's test driver answers the agent query of
    a running domain with one 192.168.0.N/24 per interface, under the interface's MAC."""
    running = IFACE.format(mac="52:54:00:12:34:56", target="<target dev='vs-g-nolink0'/>")
    running += IFACE.format(mac="52:54:00:12:34:57", target="<target dev='vs-g-nolink1'/>")
    off = IFACE.format(mac="52:54:00:12:34:58", target="")
    dom = "<domain type='test'><name>{}</name><memory>65536</memory><os><type>hvm</type></os><devices>{}</devices>{}"
    node = tmp_path / "node.xml"
    node.write_text(
        "<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
        + dom.format("vs-g-web", running, "</domain>")
        + dom.format("vs-g-off", off, "<test:runstate>5</test:runstate></domain>")
        + "</node>"
    )
    return node


def _status(node: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    cmd = [sys.executable, "-m", "vifscope", "-c", f"test://{node}", "status", "--json", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert proc.stderr == "", proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _by_mac(doc: dict[str, Any]) -> dict[str, list[tuple[str, int | None, str]]]:
    return {v["mac"]: [(a["address"], a["prefix"], a["source"]) for a in v["addresses"]] for v in doc["vifs"]}


def test_status_without_agent_says_why_only_in_the_notes(tmp_path: Path) -> None:
    code, doc = _status(_node(tmp_path))
    assert code == 1  # the taps do not exist here: missing, whatever the addresses
    assert doc["notes"] == [NOT_ASKED]
    assert not [e for e in doc["source_errors"] if e["source"] == "agent"]
    assert _by_mac(doc) == {
        "52:54:00:12:34:56": [("fe80::5054:ff:fe12:3456", 64, "eui64")],
        "52:54:00:12:34:57": [("fe80::5054:ff:fe12:3457", 64, "eui64")],
        "52:54:00:12:34:58": [("fe80::5054:ff:fe12:3458", 64, "eui64")],
    }


def test_status_agent_asks_running_guests_over_a_read_write_connection(tmp_path: Path) -> None:
    code, doc = _status(_node(tmp_path), "--agent")
    assert code == 1
    assert doc["notes"] == ["guest agent answered for 1 of 1 running domains"]
    got = _by_mac(doc)
    assert got["52:54:00:12:34:56"][0] == ("192.168.0.1", 24, "agent")
    assert got["52:54:00:12:34:57"][0] == ("192.168.0.2", 24, "agent")
    assert got["52:54:00:12:34:58"] == [("fe80::5054:ff:fe12:3458", 64, "eui64")]  # shut off: not asked


def test_a_read_only_connection_is_refused_the_agent_without_an_error(tmp_path: Path) -> None:
    import libvirt

    conn = libvirt.openReadOnly(f"test://{_node(tmp_path)}")
    try:
        got = ask_agents(conn)
    finally:
        conn.close()
    assert got.addresses is None and not got.errors
    assert got.notes == ("guest agent refused: the libvirt connection is read-only",)


def test_a_connection_that_cannot_open_is_an_agent_source_error(tmp_path: Path) -> None:
    got = read_agent_addresses(f"test://{tmp_path}/no-such-node.xml")
    assert got.addresses is None
    assert [e.source for e in got.errors] == ["agent"]
    assert "read-write" in got.errors[0].error


class _Guest:
    """A domain whose agent answers like libvirt's dict, or (``hang``) never answers."""

    def __init__(self, name: str, mac: str, hang: threading.Event | None = None) -> None:
        self._name, self.mac, self.hang = name, mac, hang

    def name(self) -> str:
        return self._name

    def interfaceAddresses(self, source: int) -> dict[str, Any]:
        if self.hang is not None:
            self.hang.wait()
        return {"eth0": {"hwaddr": self.mac, "addrs": [{"type": 0, "addr": "10.82.9.9", "prefix": 24}]}}


def test_a_hung_agent_costs_its_answer_not_the_others() -> None:
    """libvirt waits for an agent's reply without limit: status must answer anyway."""
    release = threading.Event()
    try:
        guests = [_Guest("vs-g-a", "52:54:00:00:00:0a"), _Guest("vs-g-b", "52:54:00:00:00:0b", release)]
        guests.append(_Guest("vs-g-c", "52:54:00:00:00:0c"))
        answers = ask_all(guests, deadline=0.5)
    finally:
        release.set()
    assert answers[1] is None
    got = [[(a.mac, a.ip, a.where) for a in ans] for ans in (answers[0], answers[2]) if isinstance(ans, tuple)]
    assert got == [[("52:54:00:00:00:0a", "10.82.9.9", "vs-g-a")], [("52:54:00:00:00:0c", "10.82.9.9", "vs-g-c")]]


def test_status_wide_shows_every_address_and_the_notes_plain_status_neither(tmp_path: Path) -> None:
    node = _node(tmp_path)
    env = {**os.environ, "COLUMNS": "250"}
    base = [sys.executable, "-m", "vifscope", "-c", f"test://{node}", "status"]
    wide = subprocess.run([*base, "--wide", "--agent"], capture_output=True, text=True, timeout=60, env=env)
    plain = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert (wide.returncode, plain.returncode) == (1, 1), wide.stderr + plain.stderr
    assert "192.168.0.1/24 agent" in wide.stdout and "fe80::5054:ff:fe12:3456/64 eui64" in wide.stdout
    assert "note: guest agent answered for 1 of 1 running domains" in wide.stdout
    assert "ADDRESSES" in plain.stdout and "note:" not in plain.stdout
    assert "fe80::5054:ff:fe12:3458" in plain.stdout  # the shut-off one: its link-local only, no "+N"
